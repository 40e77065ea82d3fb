"""/api/v1/clients/{id}/certificates: register a client certificate (PEM), list, revoke.
`admin` scope. Revocation flushes the authorizer cache."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.routes.dal import authorizer_cache
from functions.routes.dal.certificates_store import DynamoCertificateStore
from functions.routes.dal.clients_store import DynamoClientStore
from functions.routes.logic import certificates, lockout
from gateway_core import aws
from gateway_core.api_caller import actor
from gateway_core.api_caller import caller as who
from gateway_core.clock import utc_now
from gateway_core.settings import settings

router = APIGatewayRouter()


class CertificateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    pem: str = Field(min_length=1, max_length=certificates.MAX_PEM_BYTES)


class CertificateOut(BaseModel):
    fingerprint: str = Field(description="SHA-256 of the DER encoding, lowercase hex")
    client_id: str
    subject: str
    issuer: str
    serial_number: str
    not_before: str
    not_after: str
    status: str
    created_at: str
    revoked_at: str | None


class CertificateList(BaseModel):
    items: list[CertificateOut]


def _store() -> DynamoCertificateStore:
    return DynamoCertificateStore(aws.client("dynamodb"), settings().table_name)


@router.post("/api/v1/clients/<client_id>/certificates", tags=["clients"], summary="Register a client certificate")
def register_certificate(client_id: str, body: CertificateIn) -> Response[CertificateOut]:
    caller = actor(router.current_event, required_scope="admin")
    clients = DynamoClientStore(aws.client("dynamodb"), settings().table_name)
    certificate = certificates.register(_store(), clients, client_id, body.pem, caller, utc_now())
    out = CertificateOut.model_validate(certificate.public())
    return Response(
        status_code=201,
        content_type="application/json",
        body=out,
        headers={"Location": f"/api/v1/clients/{client_id}/certificates/{certificate.fingerprint}"},
    )


@router.get("/api/v1/clients/<client_id>/certificates", tags=["clients"], summary="A client's certificates")
def list_certificates(client_id: str) -> CertificateList:
    actor(router.current_event, required_scope="admin")
    return CertificateList(
        items=[CertificateOut.model_validate(c.public()) for c in _store().list_for_client(client_id)]
    )


@router.delete(
    "/api/v1/clients/<client_id>/certificates/<fingerprint>", tags=["clients"], summary="Revoke a client certificate"
)
def revoke_certificate(client_id: str, fingerprint: str) -> CertificateOut:
    caller = actor(router.current_event, required_scope="admin")
    lockout.refuse_own_certificate(caller, client_id, who(router.current_event).certificate_bound)
    certificate = certificates.revoke(_store(), client_id, fingerprint, caller, utc_now())
    authorizer_cache.flush(aws.client("apigateway"), settings().rest_api_id, settings().stage)
    return CertificateOut.model_validate(certificate.public())
