"""Builds what the OAuth2 function reads and signs with: the client and certificate readers, and
one KMS signer per key (its public key fetched once per container)."""

from __future__ import annotations

import threading

from functions.routes.api.oauth import Services
from functions.routes.dal.certificate_reader import CertificateReader
from functions.routes.dal.client_reader import ClientReader
from functions.routes.dal.signing import KmsSigner
from gateway_core import aws
from gateway_core.settings import settings

_signers: dict[str, KmsSigner] = {}
_lock = threading.Lock()


def signer(key_id: str) -> KmsSigner:
    with _lock:
        if key_id not in _signers:
            _signers[key_id] = KmsSigner(aws.client("kms"), key_id)
        return _signers[key_id]


def services() -> Services:
    dynamodb, table = aws.client("dynamodb"), settings().table_name
    return Services(
        clients=ClientReader(dynamodb, table), certificates=CertificateReader(dynamodb, table), signer=signer
    )
