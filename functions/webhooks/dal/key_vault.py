"""Signing keys (decrypting them; key_sealer.py encrypts) encrypted with the webhooks' KMS key, bound to their endpoint by the encryption
context (a ciphertext copied onto another endpoint does not decrypt). Decrypted keys are kept in
the container for a few minutes: the worker signs every attempt, and a KMS call per attempt would
double the AWS calls of a delivery."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

CACHE_SECONDS = 300.0
_PURPOSE = "webhook-signing"


class KmsKeyVault:
    def __init__(self, kms: Any, key_id: str | None = None, clock: Any = time.monotonic) -> None:
        self.kms = kms
        self.key_id = key_id or os.environ.get("WEBHOOK_KEYS_KEY_ID", "")
        self._clock = clock
        self._cache: dict[tuple[str, bytes], tuple[float, str]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _context(endpoint_id: str) -> dict[str, str]:
        return {"purpose": _PURPOSE, "endpoint_id": endpoint_id}

    def decrypt(self, endpoint_id: str, ciphertext: bytes) -> str:
        key = (endpoint_id, ciphertext)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        # Naming the key (as AWS advises) refuses a ciphertext of any other key.
        answer = self.kms.decrypt(
            KeyId=self.key_id, CiphertextBlob=ciphertext, EncryptionContext=self._context(endpoint_id)
        )
        secret = bytes(answer["Plaintext"]).decode()
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = (now, secret)
        return secret
