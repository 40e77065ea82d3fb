"""JWK helpers shared by token issuing and token verification."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from gateway_core.jws_algorithms import SUPPORTED_ALGORITHMS as SUPPORTED_ALGORITHMS

# RFC 7638: the members that identify a key, per key type.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint, base64url without padding: our `kid`."""
    members = {k: jwk[k] for k in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")


def rsa_public_jwk_from_der(der: bytes, alg: str = "RS256") -> dict[str, Any]:
    """A DER SubjectPublicKeyInfo (what KMS GetPublicKey returns) as a signing JWK, `kid` = its
    RFC 7638 thumbprint, so the kid names the key material and not a KMS key id."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    from jwt.algorithms import RSAAlgorithm

    public = load_der_public_key(der)
    if not isinstance(public, RSAPublicKey):
        raise ValueError("token signing keys are RSA")
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(public))
    jwk.update({"kid": jwk_thumbprint(jwk), "alg": alg, "use": "sig"})
    return jwk


def kms_public_jwk(kms: Any, key_id: str) -> dict[str, Any]:
    return rsa_public_jwk_from_der(bytes(kms.get_public_key(KeyId=key_id)["PublicKey"]))
