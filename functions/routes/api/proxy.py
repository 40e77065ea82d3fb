"""`ANY /gw` and `ANY /gw/{proxy+}`: the request in, the proxy's answer out. The proxy itself
(functions/routes/logic/proxy.py) knows no events; this module only translates."""

from __future__ import annotations

import base64
from typing import Any

from functions.routes.logic.proxy import Proxy, ProxyCaller, ProxyRequest, ProxyResponse
from functions.routes.logic.traffic import Limits
from gateway_core.caller import optional_caller
from gateway_core.endpoints import Reply, Request

PREFIX = "/gw"


def proxy_caller(request: Request) -> ProxyCaller:
    """The caller as the gateway authorizer saw it: anonymous without a credential."""
    # Also refuses a decision past its `not_after`, narrows the scopes to the client's grant and
    # checks a certificate-bound token against this request's certificate.
    who = optional_caller(request.authorizer, request.client_cert_pem)
    if who is None:
        return ProxyCaller(client_id=None)
    return ProxyCaller(
        client_id=who.client_id,
        scopes=who.scopes,
        tier=who.tier or "free",
        credential_kind=who.credential_kind,
        credential_id=who.credential_id,
        key_limits=_key_limits(str(request.authorizer.get("rate_limits") or "")),
        key_lineage=who.key_lineage,
    )


def _key_limits(value: str) -> Limits | None:
    """The authorizer's "<minute>/<hour>/<day>" for a key with its own limits."""
    parts = value.split("/")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        return None
    minute, hour, day = (int(p) for p in parts)
    return Limits(per_minute=minute, per_hour=hour, per_day=day)


class ProxiedReply(Reply):
    """An upstream's answer, whatever its bytes, with every value of a repeated header."""

    __slots__ = ("more_headers",)

    def __init__(
        self, status: int, headers: dict[str, str], body: bytes, more_headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(status, headers, body)
        self.more_headers = more_headers

    def result(self) -> dict[str, Any]:
        body = self.body.encode() if isinstance(self.body, str) else self.body
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            # Binary answers reach clients as bytes only when the API lists binary media types.
            text, encoded = base64.b64encode(body).decode(), True
        # A repeated header goes in multiValueHeaders alone: API Gateway merges the two maps, so a
        # name in both would send its first value twice.
        multi: dict[str, list[str]] = {}
        for name, value in self.more_headers:
            if name in self.headers:
                multi.setdefault(name, [self.headers[name]]).append(value)
        single = {name: value for name, value in self.headers.items() if name not in multi}
        return {
            "statusCode": self.status,
            "headers": single,
            "multiValueHeaders": multi,
            "body": text,
            "isBase64Encoded": encoded,
        }


def to_reply(response: ProxyResponse) -> Reply:
    return ProxiedReply(response.status, response.headers, response.body, response.more_headers)


def handle(request: Request, proxy: Proxy) -> Reply:
    subpath = request.path[len(PREFIX) :] if request.path.startswith(PREFIX) else request.path
    proxied = ProxyRequest(
        method=request.method,
        path=subpath or "/",
        query=request.query,
        headers=request.headers,
        body=request.body,
        source_ip=request.source_ip,
        request_id=request.request_id,
        caller=proxy_caller(request),
    )
    return to_reply(proxy.handle(proxied))
