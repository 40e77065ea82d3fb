"""The webhooks API's part of the OpenAPI document is generated from its routers
(functions/webhooks/openapi.py) and committed beside docs.py, which the management function serves
it from: the committed file must be what the routers say now."""

from __future__ import annotations

import json

from functions.webhooks.openapi import FRAGMENT, fragment, render

_REGENERATE = "regenerate it: `make openapi` (or `PYTHONPATH=.:layers python -m functions.webhooks.openapi`)"


def test_the_committed_fragment_is_what_the_webhooks_routers_generate() -> None:
    assert FRAGMENT.read_text(encoding="utf-8") == render(fragment()), (
        f"{FRAGMENT.name} differs from the webhooks routers; {_REGENERATE}"
    )


def test_the_fragment_describes_every_route_of_the_webhooks_function() -> None:
    from functions.webhooks.handler import app

    committed = json.loads(FRAGMENT.read_text(encoding="utf-8"))
    routes = {
        (route.method.lower(), route.openapi_path)
        for route in [*app._static_routes, *app._dynamic_routes]
        if route.include_in_schema
    }
    described = {(method, path) for path, item in committed["paths"].items() for method in item}
    assert routes == described, _REGENERATE
    assert len(routes) >= 17


def test_the_documented_id_patterns_are_the_ones_the_webhooks_function_checks() -> None:
    from functions.routes.api.contract import PATH_PATTERNS
    from functions.webhooks.logic.endpoints import ENDPOINT_ID, new_endpoint_id
    from functions.webhooks.logic.fanout import delivery_id
    from functions.webhooks.logic.operations import DELIVERY_ID

    assert PATH_PATTERNS["endpoint_id"][1] == f"^{ENDPOINT_ID.pattern}$"
    assert PATH_PATTERNS["delivery_id"][1] == f"^{DELIVERY_ID.pattern}$"
    # and the ids it issues match them
    assert ENDPOINT_ID.fullmatch(new_endpoint_id())
    assert DELIVERY_ID.fullmatch(delivery_id("msg_x", "ep_y"))
