"""Token signing with a KMS asymmetric key (the private key never leaves KMS), and its public
key as a JWK for /.well-known/jwks.json. PyJWT assembles the JWS; KMS computes the signature."""

from __future__ import annotations

import json
import threading
from typing import Any

from jwt.algorithms import Algorithm
from jwt.api_jws import PyJWS

from gateway_core.jwk import kms_public_jwk

ALGORITHM = "RS256"
KMS_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"


class _KmsRs256(Algorithm):
    """RS256 whose `key` is a KMS key id: signing happens in KMS."""

    def __init__(self, kms: Any) -> None:
        self.kms = kms

    def prepare_key(self, key: Any) -> Any:
        return key

    def sign(self, msg: bytes, key: Any) -> bytes:
        response = self.kms.sign(KeyId=key, Message=msg, MessageType="RAW", SigningAlgorithm=KMS_ALGORITHM)
        return bytes(response["Signature"])

    def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
        raise NotImplementedError("verify with the public key from the JWKS")

    @staticmethod
    def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
        raise NotImplementedError

    @staticmethod
    def from_jwk(jwk: str | dict[str, Any]) -> Any:
        raise NotImplementedError


class KmsSigner:
    """One per container: the public key is fetched once and cached."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self.kms = kms
        self.key_id = key_id
        self._jws = PyJWS(algorithms=[])
        self._jws.register_algorithm(ALGORITHM, _KmsRs256(kms))
        self._jwk: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def public_jwk(self) -> dict[str, Any]:
        if self._jwk is None:
            with self._lock:
                if self._jwk is None:
                    self._jwk = kms_public_jwk(self.kms, self.key_id)
        return self._jwk

    def sign(self, claims: dict[str, Any]) -> str:
        kid = self.public_jwk()["kid"]
        payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
        return self._jws.encode(payload, self.key_id, algorithm=ALGORITHM, headers={"kid": kid, "typ": "at+jwt"})
