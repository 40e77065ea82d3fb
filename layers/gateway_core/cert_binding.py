"""Client-certificate identity without parsing X.509: the SHA-256 of a certificate's DER encoding
is both our registry key (hex) and the RFC 8705 `x5t#S256` confirmation claim (base64url).

Stdlib only (no `cryptography`), because the mTLS and JWT authorizers run this on every
uncached request.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from typing import Any


def client_cert_pem(request_context: Any) -> str:
    """The client certificate API Gateway verified on an mTLS custom domain, from an event's
    `requestContext` ("" without one)."""
    identity = (request_context or {}).get("identity") or {}
    cert = identity.get("clientCert") or {}
    return str(cert.get("clientCertPem") or "") if isinstance(cert, dict) else ""


class NotACertificate(ValueError):
    pass


def der_from_pem(pem: str) -> bytes:
    try:
        der = ssl.PEM_cert_to_DER_cert(pem.strip())
    except (ValueError, TypeError) as error:
        raise NotACertificate("not a PEM certificate") from error
    if len(der) < 64 or der[0] != 0x30:  # a certificate is a DER SEQUENCE
        raise NotACertificate("not a DER certificate")
    return der


def fingerprint_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def x5t_s256(der: bytes) -> str:
    return x5t_s256_of_digest(hashlib.sha256(der).digest())


def fingerprint_of_x5t(x5t: str) -> str:
    """The registry fingerprint (hex) of an `x5t#S256` value: the same SHA-256, other encoding.
    NotACertificate when it is not the base64url of 32 bytes."""
    try:
        digest = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4))
    except (ValueError, TypeError) as error:
        raise NotACertificate("not a base64url SHA-256") from error
    if len(digest) != hashlib.sha256().digest_size or x5t_s256_of_digest(digest) != x5t:
        raise NotACertificate("not a base64url SHA-256")
    return digest.hex()


def x5t_s256_of_digest(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def pem_x5t_s256(pem: str) -> str:
    """The `x5t#S256` of a PEM certificate ("" when none or unreadable)."""
    if not pem:
        return ""
    try:
        return x5t_s256(der_from_pem(pem))
    except NotACertificate:
        return ""
