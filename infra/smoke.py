"""`make smoke BASE=... ADMIN_KEY=...` (`python -m infra.smoke`): a short journey against any
deployment, one line per step (name, HTTP status, ok/FAIL), stopping at the first failure.

health -> whoami with the admin key -> register a client -> an API key for it -> whoami with the
key -> a token (client credentials) -> whoami/token with it -> a gateway, a route and a deploy,
then a call through /gw to an upstream -> clean-up of what it created (route, gateway, key revoked
and refused, client). The upstream is `UPSTREAM` (an https URL the deployment can reach), else a
server this script starts on 127.0.0.1, which only a deployment on this machine can reach (the
local runtime allowlists loopback); with neither, the /gw steps are skipped with a message.

Settings come from the environment (so the admin key is neither echoed by make nor visible in the
process list) or from the options: BASE (default http://127.0.0.1:$PORT, 8080), ADMIN_KEY (default: the
local runtime's, from $LOCAL_STATE_DIR/admin.json), UPSTREAM. Standard library and httpx only.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

PROPAGATION_S = 15.0  # the proxy learns of a deploy within 2 s (README); allow for slow machines


class StepFailed(Exception):
    pass


@dataclass
class Journey:
    http: httpx.Client
    admin_key: str
    run: str = field(default_factory=lambda: secrets.token_hex(4))
    created: dict[str, str] = field(default_factory=dict)
    steps: int = 0

    def step(
        self,
        name: str,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        check: Callable[[httpx.Response], str | None] | None = None,
        skip: Callable[[httpx.Response], str | None] | None = None,
        **request: Any,
    ) -> httpx.Response:
        """One request, one printed line; a status outside `expect` or a failed check raises. An
        answer `skip` explains is printed as SKIP and returned (the caller leaves that part out)."""
        try:
            response = self.http.request(method, path, **request)
        except httpx.HTTPError as error:
            _line(name, "---", f"FAIL  {type(error).__name__}: {error}")
            raise StepFailed(name) from error
        reason = skip(response) if skip is not None else None
        if reason is not None:
            _line(name, str(response.status_code), f"SKIP  {reason}")
            return response
        problem = None
        if response.status_code not in expect:
            problem = f"expected {'/'.join(map(str, expect))}; {_problem(response)}"
        elif check is not None:
            problem = check(response)
        _line(name, str(response.status_code), "ok" if problem is None else f"FAIL  {problem}")
        self.steps += 1
        if problem is not None:
            raise StepFailed(name)
        return response

    def admin(self) -> dict[str, str]:
        return {"x-api-key": self.admin_key}


def _line(name: str, status: str, outcome: str) -> None:
    print(f"  {name:<34} {status:>4}  {outcome}", flush=True)


def _problem(response: httpx.Response) -> str:
    """What went wrong, from a problem document (never a request's credentials)."""
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    if isinstance(body, dict) and ("code" in body or "detail" in body):
        return f"{body.get('code')}: {body.get('detail') or body.get('title')}"
    return json.dumps(body)[:200]


def _target_refused(response: httpx.Response) -> bool:
    """A 422 whose only complaint is the route's target URL (the SSRF guard)."""
    if response.status_code != 422:
        return False
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return bool(errors) and all("targets" in [str(part) for part in error.get("loc", [])] for error in errors)


def _field(response: httpx.Response, *names: str) -> Any:
    body = response.json()
    for name in names:
        body = body[name]
    return body


class _Upstream(BaseHTTPRequestHandler):
    """Answers every GET with a JSON document naming the smoke run, so the journey can tell that
    the answer came from here through the proxy."""

    run = ""

    def do_GET(self) -> None:
        body = json.dumps({"smoke": self.run, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def loopback_upstream(run: str) -> Iterator[str]:
    handler = type("SmokeUpstream", (_Upstream,), {"run": run})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="smoke-upstream", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def identity(journey: Journey) -> dict[str, str]:
    """Health, the admin key, a client with a key and a token; returns the client's credentials."""
    journey.step(
        "health",
        "GET",
        "/api/v1/gateway/health",
        check=lambda r: None if r.json().get("status") in ("healthy", "degraded") else f"status {r.json()}",
    )
    # The template's MOCK 405 (infra/constructs/api.py): what only a real deployment proves works.
    journey.step(
        "PATCH health (405 with Allow)",
        "PATCH",
        "/api/v1/gateway/health",
        expect=(405,),
        json={},
        check=lambda r: (
            None
            if "GET" in r.headers.get("allow", "").split(", ") and r.json().get("code") == "method_not_allowed"
            else f"Allow {r.headers.get('allow')!r}; {_problem(r)}"
        ),
    )
    # A MOCK reads a passed-through body for a statusCode: bodies that are not JSON must still
    # get the 405, never a 5xx (the twin cannot prove what AWS's parser does with them).
    for media_type, body in (("text/plain", b"not json"), ("application/octet-stream", bytes(range(256)))):
        journey.step(
            f"POST health with a {media_type} body (405)",
            "POST",
            "/api/v1/gateway/health",
            expect=(405,),
            content=body,
            headers={"Content-Type": media_type},
        )
    journey.step(
        "whoami (admin key)",
        "GET",
        "/api/v1/whoami",
        headers=journey.admin(),
        check=lambda r: None if "admin" in r.json().get("scopes", []) else "the key has no admin scope",
    )
    registered = journey.step(
        "register a client",
        "POST",
        "/api/v1/clients/register",
        expect=(201,),
        headers=journey.admin(),
        json={
            "name": f"smoke-{journey.run}",
            "description": "created by make smoke; deleted at its end",
            "client_type": "integration",
            "contact_email": "smoke@example.com",
            "allowed_scopes": ["data:read"],
        },
    )
    client_id = str(_field(registered, "client_id"))
    journey.created["client"] = client_id
    key = journey.step(
        "create an API key for it",
        "POST",
        "/api/v1/gateway/keys",
        expect=(201,),
        headers=journey.admin(),
        json={"client_id": client_id, "name": "smoke"},
    )
    journey.created["key"] = str(_field(key, "key_id"))
    api_key = str(_field(key, "api_key"))
    journey.step(
        "whoami (the new key)",
        "GET",
        "/api/v1/whoami",
        headers={"x-api-key": api_key},
        check=lambda r: None if r.json().get("client_id") == client_id else f"client {r.json().get('client_id')}",
    )
    token = journey.step(
        "token (client credentials)",
        "POST",
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, str(_field(registered, "client_secret"))),
    )
    journey.step(
        "whoami/token (the token)",
        "GET",
        "/api/v1/whoami/token",
        headers={"Authorization": f"Bearer {_field(token, 'access_token')}"},
        check=lambda r: None if r.json().get("client_id") == client_id else f"client {r.json().get('client_id')}",
    )
    return {"client_id": client_id, "api_key": api_key}


def through_gw(journey: Journey, upstream: str, *, ours: bool, api_key: str) -> None:
    """A gateway with one route to `upstream`, deployed, and a call through /gw with the key."""
    base_path = f"/smoke-{journey.run}"
    created = journey.step(
        "create a gateway",
        "POST",
        "/api/v1/gateways",
        expect=(201,),
        headers=journey.admin(),
        json={"name": f"smoke-{journey.run}", "base_path": base_path, "description": "make smoke"},
    )
    gateway_id = str(_field(created, "gateway_id"))
    journey.created["gateway"] = gateway_id
    parts = urlsplit(upstream)
    target = f"{parts.scheme}://{parts.netloc}"
    route: dict[str, Any] = {
        "gateway_id": gateway_id,
        "name": "smoke echo",
        "method": "GET",
        "path": "/echo",
        "upstream_path": parts.path or "/",
        "targets": [{"url": target}],
        "required_scopes": ["data:read"],
        "retry": {"max_attempts": 1},
    }
    response = journey.step(
        "create a route",
        "POST",
        "/api/v1/gateway/routes",
        expect=(201, 422) if ours else (201,),
        headers=journey.admin(),
        json=route,
        skip=lambda r: (
            "the deployment does not allowlist loopback upstreams (its SSRF guard refused "
            f"{target}); give UPSTREAM=https://... to include /gw"
            if _target_refused(r)
            else None
        ),
    )
    if response.status_code != 201:
        return
    journey.created["route"] = str(_field(response, "route_id"))
    journey.step(
        "deploy the gateway",
        "POST",
        f"/api/v1/gateways/{gateway_id}/deploy",
        expect=(201,),
        headers=journey.admin(),
        json={"description": "make smoke"},
    )
    path = f"/gw{base_path}/echo"
    deadline = time.monotonic() + PROPAGATION_S
    while True:  # until the proxy has learnt of the deploy
        answer = journey.http.get(path, headers={"x-api-key": api_key})
        if answer.status_code not in (404, 503) or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    def came_through(response: httpx.Response) -> str | None:
        if not ours:
            return None
        return None if response.json().get("smoke") == journey.run else "the answer is not our upstream's"

    journey.step(f"GET {path}", "GET", path, headers={"x-api-key": api_key}, expect=(200,), check=came_through)


def clean_up(journey: Journey, api_key: str | None) -> bool:
    """Remove what the journey created, where the API allows; True when all of it went."""
    created = journey.created
    admin = journey.admin()
    steps: list[tuple[str, str, str, int, dict[str, str]]] = []
    if "route" in created:
        steps.append(("delete the route", "DELETE", f"/api/v1/gateway/routes/{created['route']}", 204, admin))
    if "gateway" in created:
        steps.append(("delete the gateway", "DELETE", f"/api/v1/gateways/{created['gateway']}", 204, admin))
    if "key" in created:
        steps.append(("revoke the key", "DELETE", f"/api/v1/gateway/keys/{created['key']}", 200, admin))
        if api_key:
            steps.append(("the revoked key is refused", "GET", "/api/v1/whoami", 401, {"x-api-key": api_key}))
    if "client" in created:
        steps.append(("delete the client", "DELETE", f"/api/v1/clients/{created['client']}", 204, admin))
    done = True
    for name, method, path, status, headers in steps:
        try:
            journey.step(name, method, path, expect=(status,), headers=headers)
        except StepFailed:
            done = False
    return done


def run(base: str, admin_key: str, upstream: str | None, timeout: float = 30.0) -> int:
    base = base.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout, follow_redirects=False, trust_env=False) as http:
        journey = Journey(http, admin_key)
        print(f"smoke against {base} (run {journey.run})", flush=True)
        passed = False
        credentials: dict[str, str] = {}
        try:
            credentials = identity(journey)
            if upstream:
                through_gw(journey, upstream, ours=False, api_key=credentials["api_key"])
            elif _is_loopback(base):
                with loopback_upstream(journey.run) as local:
                    through_gw(journey, local, ours=True, api_key=credentials["api_key"])
            else:
                _line(
                    "/gw",
                    "",
                    "SKIP  a loopback upstream is unreachable from this deployment; give UPSTREAM=https://...",
                )
            passed = True
        except StepFailed:
            pass
        except (httpx.HTTPError, ValueError, KeyError) as error:
            _line("(unexpected answer)", "", f"FAIL  {type(error).__name__}: {error}")
        print("clean-up", flush=True)
        cleaned = clean_up(journey, credentials.get("api_key"))
    if passed and cleaned:
        print(f"smoke passed ({journey.steps} steps)", flush=True)
        return 0
    print("smoke FAILED" + ("" if passed else " (stopped at the first failure)"), flush=True)
    return 1


def _local_admin_key() -> str | None:
    path = Path(os.environ.get("LOCAL_STATE_DIR", ".local")) / "admin.json"
    try:
        return str(json.loads(path.read_text())["api_key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.smoke", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    local = f"http://127.0.0.1:{os.environ.get('PORT') or 8080}"
    parser.add_argument("--base", default=os.environ.get("BASE") or local, help="the API's base URL")
    parser.add_argument("--upstream", default=os.environ.get("UPSTREAM") or None, help="an https URL for /gw")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args(argv)
    admin_key = os.environ.get("ADMIN_KEY") or (_local_admin_key() if _is_loopback(args.base) else None)
    if not admin_key:
        parser.error("ADMIN_KEY is required (the environment variable, e.g. make smoke ADMIN_KEY=...)")
    if args.upstream and urlsplit(args.upstream).scheme not in ("http", "https"):
        parser.error("UPSTREAM is an http(s) URL")
    return run(args.base, admin_key, args.upstream, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
