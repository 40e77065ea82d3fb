"""HTTP front of the local API Gateway: a threading server on loopback."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.local.apigateway import MAX_REQUEST_BYTES, HttpRequest, RestApiDataPlane

log = logging.getLogger("local.http")


class _Handler(BaseHTTPRequestHandler):
    server: GatewayHttpServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        too_large = length > MAX_REQUEST_BYTES
        if too_large:
            self.close_connection = True  # answer without reading the oversized body
        request = HttpRequest(
            method=self.command.upper(),
            target=self.path,
            headers=list(self.headers.items()),
            body=b"" if too_large or not length else self.rfile.read(length),
            source_ip=self.client_address[0],
            too_large=too_large,
        )
        data_plane = self.server.data_plane
        assert data_plane is not None, "requests are served only once the data plane is set"
        response = data_plane.handle(request)
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug(format, *args)


class GatewayHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, data_plane: RestApiDataPlane | None) -> None:
        self.data_plane = data_plane
        super().__init__((host, port), _Handler)
