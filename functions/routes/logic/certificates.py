"""Client certificates for mTLS: registered to an active client from a PEM, found later by the
SHA-256 fingerprint of their DER encoding, revocable. The mTLS authorizer (next step) accepts a
certificate only while it is registered, active and within its validity."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from functions.routes.logic.clients import ClientStore
from gateway_core.audit import Actor
from gateway_core.clock import iso
from gateway_core.errors import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from cryptography import x509

CertStatus = Literal["active", "revoked"]
MAX_PEM_BYTES = 16 * 1024


@dataclass(frozen=True)
class Certificate:
    fingerprint: str  # SHA-256 of the DER encoding, lowercase hex
    client_id: str
    subject: str
    issuer: str
    serial_number: str
    not_before: str
    not_after: str
    status: CertStatus
    created_at: str
    revoked_at: str | None

    def public(self) -> dict[str, Any]:
        return asdict(self)


class DuplicateCertificate(Exception):
    pass


class CertificateStore(Protocol):
    def create(self, certificate: Certificate, actor: Actor) -> None: ...
    def get(self, fingerprint: str) -> Certificate | None: ...
    def list_for_client(self, client_id: str) -> list[Certificate]: ...
    def replace(self, before: Certificate, after: Certificate, action: str, actor: Actor) -> None: ...


def fingerprint_of(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def parse_pem(pem: str, now: datetime) -> x509.Certificate:
    # cryptography is imported here, when a certificate is registered: the functions that only
    # read certificates (OAuth2, the management API's other calls) do not load it at start.
    from cryptography import x509

    if len(pem.encode()) > MAX_PEM_BYTES or "-----BEGIN CERTIFICATE-----" not in pem:
        raise ValidationFailed("Send one PEM-encoded X.509 certificate.", code="invalid_certificate")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as error:
        raise ValidationFailed(
            "The PEM does not hold a readable X.509 certificate.", code="invalid_certificate"
        ) from error
    if certificate.not_valid_after_utc <= now:
        raise ValidationFailed("The certificate has expired.", code="certificate_expired")
    return certificate


def register(
    store: CertificateStore, clients: ClientStore, client_id: str, pem: str, actor: Actor, now: datetime
) -> Certificate:
    client = clients.get(client_id)
    if client is None:
        raise NotFound(f"No client {client_id}.", code="client_not_found")
    if client.status != "active":
        raise Conflict(f"Client {client_id} is {client.status}.", code="client_not_active")
    parsed = parse_pem(pem, now)
    certificate = Certificate(
        fingerprint=fingerprint_of(parsed),
        client_id=client_id,
        subject=parsed.subject.rfc4514_string(),
        issuer=parsed.issuer.rfc4514_string(),
        serial_number=format(parsed.serial_number, "x"),
        not_before=iso(parsed.not_valid_before_utc),
        not_after=iso(parsed.not_valid_after_utc),
        status="active",
        created_at=iso(now),
        revoked_at=None,
    )
    try:
        store.create(certificate, actor)
    except DuplicateCertificate as error:
        raise Conflict("This certificate is registered already.", code="duplicate_certificate") from error
    return certificate


def revoke(store: CertificateStore, client_id: str, fingerprint: str, actor: Actor, now: datetime) -> Certificate:
    certificate = store.get(fingerprint.lower())
    if certificate is None or certificate.client_id != client_id:
        raise NotFound(f"No certificate {fingerprint} for client {client_id}.", code="certificate_not_found")
    if certificate.status == "revoked":
        return certificate
    after = replace(certificate, status="revoked", revoked_at=iso(now))
    store.replace(certificate, after, "certificate.revoke", actor)
    return after
