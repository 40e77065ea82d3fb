"""The data plane's reads of upstream secrets: the item's ciphertext (one GetItem on
`SECRET#<gateway id>`/`<name>`, the only `SECRET#` items the proxy's role may read) and its
decryption with the secrets key (kms:Decrypt, which only the proxy's role holds). The key is named
on every call, so a ciphertext made under any other key is refused, and the encryption context
binds it to its gateway and name. The KMS client is made at the first decryption: most containers
serve routes without secrets and should not pay for it at a cold start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.routes.logic.secret_values import Sealed, SecretUnavailable, encryption_context
from gateway_core.errors import DependencyUnavailable

# KMS answers that mean this ciphertext will not decrypt (not a passing failure).
_UNDECRYPTABLE = frozenset(
    {
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "AccessDeniedException",
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "InvalidKeyUsageException",
    }
)


class DynamoKmsSecretSource:
    def __init__(self, dynamodb: Any, table_name: str, kms: Callable[[], Any], key_id: str) -> None:
        self.dynamodb = dynamodb
        self.table = table_name
        self.kms_client = kms
        self.key_id = key_id

    def sealed(self, gateway_id: str, name: str) -> Sealed | None:
        try:
            item = self.dynamodb.get_item(
                TableName=self.table,
                Key={"PK": {"S": f"SECRET#{gateway_id}"}, "SK": {"S": name}},
                ProjectionExpression="ciphertext",
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise DependencyUnavailable("The route's upstream credential could not be read; try again.") from error
        if not item:
            return None
        return Sealed(bytes(item["ciphertext"]["B"]))

    def unseal(self, gateway_id: str, name: str, ciphertext: bytes) -> str:
        if not self.key_id:
            raise SecretUnavailable(f"The upstream credential '{name}' cannot be read on this deployment (no key).")
        kms = self.kms_client()
        try:
            opened = kms.decrypt(
                KeyId=self.key_id,
                CiphertextBlob=ciphertext,
                EncryptionContext=encryption_context(gateway_id, name),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _UNDECRYPTABLE:
                raise SecretUnavailable(
                    f"The upstream credential '{name}' this route uses cannot be decrypted; set it again.",
                    extensions={"secret": name},
                ) from error
            raise DependencyUnavailable("The route's upstream credential could not be read; try again.") from error
        except BotoCoreError as error:
            raise DependencyUnavailable("The route's upstream credential could not be read; try again.") from error
        return bytes(opened["Plaintext"]).decode("utf-8")
