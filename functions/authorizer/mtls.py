"""Client-certificate check for the mTLS authorizer: API Gateway has verified the chain against
the truststore; here the certificate must be registered (`CERT#<sha256>`, one GetItem, never
cached so a revocation applies to the next request), active and within its validity, and its
client active, unexpired and calling from an allowed address. The Allow holds until the
certificate or the client expires, whichever comes first (`not_after`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.authorizer.certificate_record import in_force_until, read_certificate
from functions.authorizer.client_state import ClientStateCache, check_client, epoch
from functions.authorizer.core import Denied, Principal, earliest
from gateway_core.cert_binding import NotACertificate, der_from_pem, fingerprint_hex, x5t_s256


def check_certificate(
    dynamodb: Any,
    table_name: str,
    clients: ClientStateCache,
    pem: str,
    *,
    source_ip: str,
    now: datetime,
) -> Principal:
    if not pem:
        raise Denied("missing_client_certificate")
    try:
        der = der_from_pem(pem)
    except NotACertificate as error:
        raise Denied("unreadable_client_certificate") from error
    fingerprint = fingerprint_hex(der)
    item = read_certificate(dynamodb, table_name, fingerprint)
    if item is None:
        raise Denied("unknown_certificate")
    certificate_end = in_force_until(item, now)
    client_id = item["client_id"]["S"]
    state = check_client(clients.get(dynamodb, table_name, client_id), client_id, source_ip, now)
    return Principal(
        client_id=client_id,
        credential_kind="certificate",
        scopes=state.allowed_scopes,
        tier=state.tier,
        credential_id=fingerprint,
        cert_thumbprint=x5t_s256(der),
        client_scopes=state.allowed_scopes,
        not_after=earliest(certificate_end.timestamp(), epoch(state.expires_at)),
    )
