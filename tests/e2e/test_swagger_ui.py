"""Swagger UI's Authorize button, used as a person would: headless Chromium (Debian's, driven by
Playwright) opens /api/v1/docs on the shared local runtime, authorizes with the admin API key, then
with OAuth2 client credentials (Swagger UI fetches the token from the document's tokenUrl itself),
and runs "Try it out" / "Execute" on real operations; the assertions read the rendered answer.
The browser's own requests are recorded too, so a failure says what it sent and got."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, Request, sync_playwright

from tests.e2e.conftest import RunningGateway
from tests.e2e.test_product import ADMIN_KEY

# Generous for a loaded two-core machine (a step may wait on a function's cold start), yet
# bounded: a step that hangs fails the test.
STEP_TIMEOUT_MS = 45_000
PAGE_TIMEOUT_MS = 60_000
LAUNCH_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def gateway(product_gateway: RunningGateway) -> RunningGateway:
    return product_gateway


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module. Playwright's own browser builds cannot be downloaded here, so it
    drives Debian's (`make test` installs the package when missing)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, timeout=LAUNCH_TIMEOUT_MS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def admin_client(gateway: RunningGateway) -> dict[str, Any]:
    """A client allowed `admin`, with its secret, registered through the admin API."""
    with gateway.client(headers={"x-api-key": ADMIN_KEY}) as http:
        response = http.post(
            "/api/v1/clients/register",
            json={
                "name": "Swagger UI Operator",
                "client_type": "integration",
                "contact_email": "ops@swagger-ui.example",
                "allowed_scopes": ["admin", "gateway:read"],
                "tier": "professional",
            },
        )
    assert response.status_code == 201, response.text
    return dict(response.json())


class Docs:
    """Swagger UI in one fresh browser context, with the API requests it made."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[Request] = []
        self.console: list[str] = []
        page.on("request", lambda request: self.requests.append(request))
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    def evidence(self) -> str:
        """What the page sent and got, and what it logged: the message of a failed assertion."""
        sent = []
        for request in self.requests:
            answer = request.response()
            sent.append(f"{request.method} {request.url} -> {answer.status if answer else request.failure}")
        return "requests:\n  " + "\n  ".join(sent) + "\nconsole:\n  " + "\n  ".join(self.console)

    def sent_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.url.split("?")[0].endswith(path)]

    def open_authorize(self) -> Locator:
        self.page.locator(".auth-wrapper button.authorize").click()
        dialog = self.page.locator(".dialog-ux .modal-ux")
        dialog.wait_for()
        return dialog

    def scheme(self, dialog: Locator, heading: str) -> Locator:
        """The dialog's section of one security scheme, by the heading Swagger UI gives it
        ("apiKey (apiKey)", "oauth2 (OAuth2, clientCredentials)")."""
        section = dialog.locator(".auth-container").filter(has=self.page.locator("h4", has_text=heading))
        assert section.count() == 1, f"no single '{heading}' scheme in the Authorize dialog:\n{dialog.inner_text()}"
        return section

    def execute(self, path: str, **parameters: str) -> tuple[int, Any]:
        """Try it out, fill the path parameters, Execute; the status and JSON body Swagger UI shows."""
        operation = self.page.locator(f".opblock-get:has(.opblock-summary-path[data-path='{path}'])")
        assert operation.count() == 1, f"GET {path} is not on the page once"
        if not operation.locator(".opblock-body").count():
            operation.locator(".opblock-summary").first.click()
        operation.locator("button.try-out__btn").click()
        for name, value in parameters.items():
            operation.locator(f"tr[data-param-name='{name}'] input").fill(value)
        operation.locator("button.execute").click()
        live = operation.locator(".live-responses-table tbody .response").first
        live.wait_for()
        status = int(live.locator(".response-col_status").inner_text().strip())
        body = live.locator(".response-col_description pre").first.inner_text()
        return status, json.loads(body)


@pytest.fixture
def docs(browser: Browser, gateway: RunningGateway) -> Iterator[Docs]:
    context = browser.new_context(base_url=gateway.base_url)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    try:
        page = context.new_page()
        opened = Docs(page)
        answer = page.goto("/api/v1/docs")
        assert answer is not None
        assert answer.status == 200
        page.locator(".opblock").first.wait_for()  # the document is rendered
        assert page.locator(".auth-wrapper button.authorize").count() == 1, (
            "no Authorize button: the document declares no securitySchemes\n" + opened.evidence()
        )
        yield opened
    finally:
        context.close()


def test_authorize_with_the_admin_api_key_then_execute_whoami(docs: Docs) -> None:
    dialog = docs.open_authorize()
    api_key = docs.scheme(dialog, "(apiKey)")
    api_key.locator("input").fill(ADMIN_KEY)
    api_key.locator("button.authorize").click()
    api_key.get_by_text("Authorized", exact=True).wait_for()
    api_key.locator("button.btn-done").click()
    dialog.wait_for(state="detached")

    status, body = docs.execute("/api/v1/whoami")

    assert status == 200, docs.evidence()
    assert body["client_id"] == "bootstrap-admin"
    assert body["credential_kind"] == "api_key"
    assert "admin" in body["scopes"]
    (sent,) = docs.sent_to("/api/v1/whoami")
    key_sent = sent.all_headers().get("x-api-key") == ADMIN_KEY  # compared apart: a failure must not print the key
    assert key_sent, "the page did not send the admin key as x-api-key"


def test_log_out_then_authorize_with_client_credentials_and_execute_as_a_bearer(
    docs: Docs, admin_client: dict[str, Any]
) -> None:
    # Given the key authorized, then logged out: from here on only the token may be sent.
    dialog = docs.open_authorize()
    api_key = docs.scheme(dialog, "(apiKey)")
    api_key.locator("input").fill(ADMIN_KEY)
    api_key.locator("button.authorize").click()
    api_key.get_by_text("Authorized", exact=True).wait_for()
    api_key.locator("button", has_text="Logout").click()
    api_key.locator("input").wait_for()

    # When the client-credentials flow is authorized with the admin scope ticked
    oauth2 = docs.scheme(dialog, "(OAuth2, clientCredentials)")
    oauth2.locator("#client_id_clientCredentials").fill(admin_client["client_id"])
    oauth2.locator("#client_secret_clientCredentials").fill(admin_client["client_secret"])
    admin_scope = oauth2.locator("input[type=checkbox][data-value='admin']")
    oauth2.locator(f"label[for='{admin_scope.get_attribute('id')}']").click()  # the box itself is hidden, styled
    assert admin_scope.is_checked()
    oauth2.locator("button.authorize").click()
    oauth2.get_by_text("Authorized", exact=True).wait_for()
    oauth2.locator("button.btn-done").click()
    dialog.wait_for(state="detached")

    # Then Swagger UI got the token itself, with the client's secret in a Basic header
    (token_request,) = docs.sent_to("/oauth2/token")
    token_answer = token_request.response()
    assert token_answer is not None
    assert token_answer.status == 200, docs.evidence()
    assert token_request.all_headers()["authorization"].startswith("Basic "), docs.evidence()
    assert "scope=admin" in (token_request.post_data or "")
    token = json.loads(token_answer.text())
    assert token["scope"] == "admin"

    # and the server sees a bearer token of that client, on the identity and on an admin operation
    status, identity = docs.execute("/api/v1/whoami/token")
    assert status == 200, docs.evidence()
    assert identity["client_id"] == admin_client["client_id"]
    assert identity["credential_kind"] == "jwt"
    assert "admin" in identity["scopes"]

    status, client = docs.execute("/api/v1/clients/{client_id}", client_id=admin_client["client_id"])
    assert status == 200, docs.evidence()
    assert client["name"] == "Swagger UI Operator"
    assert "client_secret" not in client

    sent = [*docs.sent_to("/api/v1/whoami/token"), *docs.sent_to(f"/api/v1/clients/{admin_client['client_id']}")]
    assert len(sent) == 2
    for request in sent:
        headers = request.all_headers()
        bearer_sent = headers.get("authorization") == f"Bearer {token['access_token']}"
        assert bearer_sent, f"{request.url} was not sent the token Swagger UI got"
        assert "x-api-key" not in headers  # the logout took the key away
