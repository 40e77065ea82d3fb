"""No request may lock out the credential it is made with: changing, suspending or deleting the
client it authenticates as, or changing, rotating or revoking the API key it presents, is another
admin's job (409 `own_credential`). A mistyped id in an automation would otherwise leave the
platform without the admin it relies on, and the bootstrap key's recovery is an operator's job
(README, "Admin credentials")."""

from __future__ import annotations

from gateway_core.audit import Actor
from gateway_core.errors import Conflict


def refuse_own_client(actor: Actor, client_id: str, change: str) -> None:
    if actor.client_id == client_id:
        raise Conflict(f"A request cannot {change} the client it is made as; ask another admin.", code="own_credential")


def refuse_own_key(actor: Actor, key_id: str, change: str) -> None:
    if actor.credential_kind == "api_key" and actor.credential_id == key_id:
        raise Conflict(
            f"A request cannot {change} the API key it presents; use another admin credential.", code="own_credential"
        )
