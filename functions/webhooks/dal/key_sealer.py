"""Encrypting new signing keys (the API's alone: the worker may only decrypt)."""

from __future__ import annotations

from functions.webhooks.dal.key_vault import KmsKeyVault


class KmsKeySealer(KmsKeyVault):
    def encrypt(self, endpoint_id: str, secret: str) -> bytes:
        answer = self.kms.encrypt(
            KeyId=self.key_id, Plaintext=secret.encode(), EncryptionContext=self._context(endpoint_id)
        )
        return bytes(answer["CiphertextBlob"])
