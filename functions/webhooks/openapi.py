"""The webhooks API's operations as an OpenAPI fragment, for the document the management function
serves at /api/v1/docs (functions/routes/api/docs.py). That function's asset holds only
functions/routes, so it cannot import these routers: the fragment is generated from them here and
committed beside docs.py (functions/routes/api/openapi_webhooks.json). `make openapi` (or
`python -m functions.webhooks.openapi`) regenerates it; tests/integration/test_openapi_fragment.py
fails when the committed file is not what this produces.

The fragment holds what the resolver derives from the handlers (paths, parameters, bodies, the
answer models of their return annotations) and the schemas those refer to; what no signature says
(statuses, headers, errors, security, examples) comes from functions/routes/api/contract.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FRAGMENT = Path(__file__).resolve().parents[1] / "routes" / "api" / "openapi_webhooks.json"
_REF_PREFIX = "#/components/schemas/"


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def fragment() -> dict[str, Any]:
    """The webhooks resolver's paths and the component schemas they refer to (transitively)."""
    # Imported here: `python -m` and the test import this module without starting the API.
    from functions.webhooks.handler import app

    schema = app.get_openapi_schema(title="Webhooks API", version="1")
    document = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    needed: set[str] = set()
    pending = _refs(document["paths"])
    while pending:
        name = pending.pop().removeprefix(_REF_PREFIX)
        if name not in needed:
            needed.add(name)
            pending |= _refs(schemas[name])
    return {"paths": document["paths"], "components": {"schemas": {name: schemas[name] for name in needed}}}


def render(value: dict[str, Any]) -> str:
    """The committed formatting: sorted keys, one-space indent, a final newline."""
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    FRAGMENT.write_text(render(fragment()), encoding="utf-8")
    print(f"wrote {FRAGMENT}")


if __name__ == "__main__":
    main()
