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
