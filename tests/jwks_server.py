"""An identity provider for tests: its JWKS served over HTTP on loopback, and tokens it signs.

What it serves can be changed between requests: the keys (rotate or remove one), extra response
headers (`Cache-Control`, `Expires`), a status, or a raw body with its own headers in place of
the JWKS (a compressed bomb, a redirect)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


class JwksServer:
    """An identity provider's JWKS endpoint on loopback, counting fetches; can be taken down."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "idp-key-1"
        self.fetches = 0
        self.failing = False
        self.keys: list[dict[str, Any]] = [self.public_jwk(self.private, self.kid)]
        self.headers: dict[str, str] = {}  # added to every answer
        self.raw_body: bytes | None = None  # served instead of the JWKS when set
        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = owner.raw_body if owner.raw_body is not None else json.dumps({"keys": owner.keys}).encode()
                self.send_response(503 if owner.failing else owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in owner.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def public_jwk(private: Any, kid: str, **extra: Any) -> dict[str, Any]:
        return {**json.loads(RSAAlgorithm.to_jwk(private.public_key())), "kid": kid, "alg": "RS256", **extra}

    def token(self, issuer: str, *, signer: Any = None, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """A token of this provider (RS256 with its key unless `signer` and `headers` say otherwise)."""
        now = int(time.time())
        payload = {"iss": issuer, "sub": "svc-42", "aud": "bank-api", "iat": now, "exp": now + 600, **claims}
        header = {"kid": self.kid, **(headers or {})}
        algorithm = str(header.pop("alg", "RS256"))
        return jwt.encode(payload, signer or self.private, algorithm=algorithm, headers=header)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
