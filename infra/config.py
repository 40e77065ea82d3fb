"""Facts about the deployment that the CDK app, the asset build and the local runtime share."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build"
FUNCTIONS_SRC = ROOT / "functions"
LAYER_SRC = ROOT / "layers"
STATE_MACHINES_DIR = Path(__file__).resolve().parent / "statemachines"

# The Lambda runtime's Python; wheels for the dependency layer are fetched for it.
LAMBDA_PYTHON_VERSION = "3.14"
LAMBDA_PLATFORM = "manylinux2014_x86_64"

# The code folders under functions/ (the design card fixes these five); each is one asset.
FUNCTION_NAMES = ("authorizer", "routes", "integrations", "webhooks", "marketdata")

# The Lambda functions: (name, code folder, handler module), one per job. A folder may hold
# several: functions/authorizer holds five authorizers sharing one core, functions/routes the data
# plane, the management API, the OAuth2 server and the health checks. Each is its own function so
# each has its own role and its cold start imports only its own path (the API key check never
# loads PyJWT; the data plane never loads the resolver, pydantic or the OpenAPI machinery).
LAMBDA_FUNCTIONS = (
    ("api_key_authorizer", "authorizer", "api_key_handler"),
    ("jwt_authorizer", "authorizer", "jwt_handler"),
    ("mtls_authorizer", "authorizer", "mtls_handler"),
    ("gateway_authorizer", "authorizer", "gateway_handler"),
    ("admin_authorizer", "authorizer", "admin_handler"),  # the admin API: an API key or a bearer token
    ("proxy", "routes", "proxy_handler"),  # /gw, /gw/{proxy+}, POST /api/v1/batch
    ("management", "routes", "management_handler"),  # the admin API, whoami, /api/v1/docs
    ("oauth", "routes", "oauth_handler"),  # token, JWKS, discovery: the only token signer
    ("health", "routes", "health_handler"),  # GET /api/v1/gateway/health, the target health checks
    ("integrations", "integrations", "handler"),
    ("webhooks", "webhooks", "handler"),  # /api/v1/webhooks, /api/v1/events
    ("webhook_fanout", "webhooks", "fanout_handler"),  # the table's stream: events -> deliveries
    ("webhook_delivery", "webhooks", "delivery_handler"),  # the delivery queue: one attempt each
    ("marketdata", "marketdata", "handler"),
)


def function_asset_dir(name: str) -> Path:
    """Staged code of one function: build/functions/<name>/functions/<name>/..."""
    return BUILD_DIR / "functions" / name


def core_layer_asset_dir() -> Path:
    """Staged shared-code layer: build/layers/core/python/gateway_core/..."""
    return BUILD_DIR / "layers" / "core"


def deps_layer_asset_dir() -> Path:
    """Staged third-party dependency layer built for the Lambda runtime."""
    return BUILD_DIR / "layers" / "deps"


def local_deps_layer_dir() -> Path:
    """The dependency layer's pins installed for this machine's interpreter (local workers)."""
    return BUILD_DIR / "layers" / "deps-local"


def runtime_sdk_dir() -> Path:
    """What Lambda's Python runtime provides besides the standard library (/var/runtime)."""
    return BUILD_DIR / "runtime"


# A file at the root of the dependency layer naming the pins it was built from.
DEPS_LAYER_MARKER = "gateway-deps-layer.json"
# Lambda's Python runtimes include the AWS SDK; code without our layer still imports boto3.
RUNTIME_SDK_PACKAGES = ("boto3",)


def handler_path(folder: str, module: str = "handler") -> str:
    """Handler string of a function whose module is functions/<folder>/<module>.py."""
    return f"functions.{folder}.{module}.lambda_handler"
