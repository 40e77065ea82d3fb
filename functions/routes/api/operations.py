"""The HTTP operations of the routes folder's functions that have no powertools resolver: the
data plane (`proxy`), `oauth` and `health` (names as in infra/config.py LAMBDA_FUNCTIONS).

Declared once, here: each function's entry module serves exactly its operations from this table
(`endpoint`), and the management function's OpenAPI document describes them from it
(functions/routes/api/docs.py), so the document stays true to what is served. Stdlib only, since
the data plane imports it; the models that document bodies are named, and imported by the
document alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from gateway_core.endpoints import Endpoint, Handler


class Operation(NamedTuple):
    function: str
    method: str  # "ANY": every method
    path: str
    summary: str
    tag: str
    subtree: bool = False  # the path and everything below it (a greedy API Gateway resource)
    body: str | None = None  # "module:Model" of the JSON body
    answer: str | None = None  # "module:Model" of the 200 answer
    answer_description: str = "Successful Response"
    description: str = ""
    form: dict[str, Any] | None = None  # JSON schema of an application/x-www-form-urlencoded body


GATEWAY_PROXY = Operation(
    "proxy",
    "ANY",
    "/gw",
    "Call a deployed route",
    "proxy",
    subtree=True,
    description=(
        "Serves the routes of the deployed gateways: the path below /gw is matched against each "
        "gateway's base path and routes. Any credential or none, as the route requires; answers "
        "are the upstream's, or problem details."
    ),
)
BATCH = Operation(
    "proxy",
    "POST",
    "/api/v1/batch",
    "Run up to 25 proxied requests concurrently",
    "proxy",
    body="functions.routes.api.batch_models:BatchIn",
    answer="functions.routes.api.batch_models:BatchOut",
    answer_description="Each sub-request's answer, in order",
)
TOKEN = Operation(
    "oauth",
    "POST",
    "/oauth2/token",
    "Client credentials grant (RFC 6749 §4.4)",
    "oauth2",
    answer="functions.routes.api.models:TokenOut",
    description=(
        "The client authenticates with HTTP Basic (client_secret_basic), with client_id and "
        "client_secret in the form (client_secret_post), or with its certificate on the mTLS domain "
        "(tls_client_auth, RFC 8705). Errors are RFC 6749 §5.2 error bodies."
    ),
    form={
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "scope": {"type": "string", "description": "Space-separated scopes; default: all the client may have"},
            "client_id": {"type": "string", "description": "client_secret_post and tls_client_auth"},
            "client_secret": {"type": "string", "description": "client_secret_post"},
        },
    },
)
JWKS = Operation(
    "oauth",
    "GET",
    "/.well-known/jwks.json",
    "Public keys that sign access tokens (RFC 7517)",
    "oauth2",
    answer="functions.routes.api.models:JwksOut",
)
DISCOVERY = Operation(
    "oauth",
    "GET",
    "/.well-known/openid-configuration",
    "Authorization server metadata (RFC 8414)",
    "oauth2",
    answer="functions.routes.api.models:ServerMetadataOut",
)
HEALTH = Operation(
    "health",
    "GET",
    "/api/v1/gateway/health",
    "Health of the gateway and its dependencies",
    "gateway",
    answer="functions.routes.api.models:HealthOut",
)

OPERATIONS = (GATEWAY_PROXY, BATCH, TOKEN, JWKS, DISCOVERY, HEALTH)


def endpoint(operation: Operation, handler: Handler, *, cors: bool = True) -> Endpoint:
    return Endpoint(operation.method, operation.path, handler, subtree=operation.subtree, cors=cors)
