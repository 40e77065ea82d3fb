"""`x5t#S256` (RFC 8705, base64url) and the registry's fingerprint (hex) are one SHA-256: the JWT
authorizer finds a bound token's certificate record from the claim alone."""

from __future__ import annotations

import pytest

from gateway_core.cert_binding import NotACertificate, der_from_pem, fingerprint_of_x5t, pem_x5t_s256
from tests.certificates import make_certificate


def test_the_claim_of_a_certificate_names_its_registry_fingerprint() -> None:
    pem, fingerprint = make_certificate("payments.bank.example")
    assert fingerprint_of_x5t(pem_x5t_s256(pem)) == fingerprint
    assert der_from_pem(pem)  # the same certificate the registry hashed


@pytest.mark.parametrize(
    "claim",
    [
        "",
        "not base64!",
        "AAAA",  # 3 bytes, not a SHA-256
        "A" * 44,  # 33 bytes
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",  # padded: not the canonical claim
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",  # base64, not base64url
    ],
)
def test_a_claim_that_is_not_a_canonical_base64url_sha256_is_refused(claim: str) -> None:
    with pytest.raises(NotACertificate):
        fingerprint_of_x5t(claim)
