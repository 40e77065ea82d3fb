"""RFC 8705 certificate-bound tokens end with their certificate: a bound token is accepted only
while the certificate it is bound to is in force in our registry (`CERT#<sha256>`, one strongly
consistent GetItem per decision, never cached, so a revocation applies to the next decision, and
the revocation's flush of API Gateway's cache makes that decision happen at once).

Our own tokens are bound only to a certificate registered to their client (the token endpoint
checks that), so for them the certificate must still be registered, to that client, active and
within its validity. An external issuer may bind its tokens to certificates we never registered
(it vouches for the binding, API Gateway for the chain); a certificate we did register and
revoked, or whose validity is over, refuses every token bound to it whoever issued it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.authorizer.certificate_record import in_force_until, read_certificate
from functions.authorizer.core import Denied
from gateway_core.cert_binding import NotACertificate, fingerprint_of_x5t


def certificate_in_force(
    dynamodb: Any, table_name: str, x5t: str, *, client_id: str | None, now: datetime
) -> float | None:
    """Refuses (401) a token bound to `x5t` (`cnf.x5t#S256`) unless its certificate is in force;
    `client_id`: the client our own token was issued to (None for an external issuer's token).
    Returns when the certificate's validity ends (epoch seconds; None for an unregistered one)."""
    try:
        fingerprint = fingerprint_of_x5t(x5t)
    except NotACertificate as error:
        raise Denied("unsupported_confirmation") from error
    item = read_certificate(dynamodb, table_name, fingerprint)
    if item is None:
        if client_id is not None:
            raise Denied("certificate_not_registered")
        return None
    if client_id is not None and item.get("client_id", {}).get("S") != client_id:
        raise Denied("certificate_not_registered")
    certificate_end = in_force_until(item, now)
    return certificate_end.timestamp()
