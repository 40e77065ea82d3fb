"""An identity provider for tests: its JWKS served over HTTP on loopback, and tokens it signs."""

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
        jwk = {**json.loads(RSAAlgorithm.to_jwk(self.private.public_key())), "kid": self.kid, "alg": "RS256"}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": [jwk]}).encode()
                self.send_response(503 if owner.failing else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, issuer: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": issuer, "sub": "svc-42", "aud": "bank-api", "iat": now, "exp": now + 600, **claims}
        return jwt.encode(payload, self.private, algorithm="RS256", headers={"kid": self.kid})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
