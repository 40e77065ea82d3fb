"""The JWS algorithms the gateway accepts: asymmetric only (RFC 8725). A shared-secret (HS*) token
could be forged by anyone holding the secret, and accepting HS* is what enables "HS256 signed with
our RSA public key".

Kept apart from gateway_core.jwk (which re-exports it): that module reads public keys from KMS, and
a function that only checks algorithm names (the management API's issuers) must not carry a KMS
call on its code path (tests/infra/test_function_roles.py holds roles to the calls, module by module).
"""

from __future__ import annotations

SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
