"""No request may lock out the credential it is made with: changing, suspending or deleting the
client it authenticates as, changing, rotating or revoking the API key it presents, revoking its
own client's certificates with a certificate-bound token, or denying its own address, is another
admin's job (409 `own_credential`). A mistyped id in an automation would otherwise leave the
platform without the admin it relies on, and the bootstrap key's recovery is an operator's job
(README, "Admin credentials")."""

from __future__ import annotations

import ipaddress

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


def refuse_own_certificate(actor: Actor, client_id: str, certificate_bound: bool) -> None:
    # A certificate-bound token stops working with its certificate; which of the client's
    # certificates it is bound to does not matter for the refusal: another admin revokes it.
    if certificate_bound and actor.client_id == client_id:
        raise Conflict(
            "A certificate-bound request cannot revoke its own client's certificates; ask another admin.",
            code="own_credential",
        )


def refuse_own_address(source_ip: str | None, cidrs: list[str]) -> None:
    """The denylist applies to every authorizer, the admin's included."""
    try:
        address = ipaddress.ip_address(source_ip or "")
    except ValueError:
        return  # no address to protect (a direct invocation)
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue  # refused as a CIDR by the denylist's own rules
        if address in network:
            raise Conflict(
                f"{cidr} holds this request's own address; another admin (from elsewhere) can deny it.",
                code="own_credential",
            )
