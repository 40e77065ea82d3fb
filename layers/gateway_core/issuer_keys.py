"""Where an external token issuer's configuration lives: its id is derived from the issuer URL,
so the JWT authorizer finds the configuration of a token's `iss` with one GetItem and no index."""

from __future__ import annotations

import hashlib
from typing import Any


def issuer_id(issuer: str) -> str:
    return "iss_" + hashlib.sha256(issuer.encode()).hexdigest()[:24]


def issuer_key(issuer_identifier: str) -> dict[str, Any]:
    return {"PK": {"S": f"ISSUER#{issuer_identifier}"}, "SK": {"S": "ISSUER"}}
