"""Bearer JWT checks for the JWT authorizer: our own access tokens and those of external issuers
an admin configured (issuer, JWKS URL, audiences, allowed algorithms).

RFC 8725: the algorithm comes from the issuer's configuration, never from the token alone
(`alg: none` and HMAC algorithms are never accepted, which also closes the "HS256 signed with our
RSA public key" confusion); issuer and audience must match; `exp` and `nbf` are enforced with 60 s
of clock skew. PyJWT does the JOSE work; this module decides which key and which rules apply.

JWKS: kept per issuer, refetched when a token names an unknown `kid` but at most once a minute
per issuer, and the last good key set is kept when a fetch fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from functions.authorizer.core import Denied, Principal

CLOCK_SKEW_S = 60
REFETCH_INTERVAL_S = 60.0
# Asymmetric algorithms only: a shared-secret (HS*) token could be forged by anyone holding the secret.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


@dataclass(frozen=True)
class Issuer:
    issuer: str
    jwks_url: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...] = ("RS256",)
    required_typ: str | None = None  # our own tokens are "at+jwt" (RFC 9068)

    def __post_init__(self) -> None:
        unsupported = set(self.algorithms) - SUPPORTED_ALGORITHMS
        if unsupported or not self.algorithms:
            raise ValueError(f"unsupported algorithms for {self.issuer}: {sorted(unsupported) or 'none'}")


@dataclass
class _Entry:
    keys: dict[str, PyJWK] = field(default_factory=dict)
    last_attempt: float | None = None


class JwksCache:
    """Key sets per JWKS URL; `fetch(url)` returns the parsed JWKS document."""

    def __init__(
        self,
        fetch: Callable[[str], dict[str, Any]],
        clock: Callable[[], float] = time.monotonic,
        refetch_interval_s: float = REFETCH_INTERVAL_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._interval = refetch_interval_s
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self, url: str, entry: _Entry) -> None:
        now = self._clock()
        if entry.last_attempt is not None and now - entry.last_attempt < self._interval:
            return  # refetched recently: an unknown kid must not make us hammer the issuer
        entry.last_attempt = now
        self.fetches += 1
        try:
            document = self._fetch(url)
            key_set = PyJWKSet.from_dict(document)
        except Exception:  # noqa: BLE001 - keep the last good keys; the caller refuses unknown kids
            return
        entry.keys = {k.key_id: k for k in key_set.keys if k.key_id}

    def key(self, url: str, kid: str) -> PyJWK | None:
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            if kid not in entry.keys:
                self._refresh(url, entry)
            return entry.keys.get(kid)


def _reason(error: jwt.PyJWTError) -> str:
    for kind, reason in (
        (jwt.ExpiredSignatureError, "token_expired"),
        (jwt.ImmatureSignatureError, "token_not_yet_valid"),
        (jwt.InvalidAudienceError, "wrong_audience"),
        (jwt.InvalidIssuerError, "wrong_issuer"),
        (jwt.InvalidSignatureError, "bad_signature"),
        (jwt.MissingRequiredClaimError, "missing_claim"),
        (jwt.InvalidAlgorithmError, "alg_not_allowed"),
    ):
        if isinstance(error, kind):
            return reason
    return "invalid_token"


def verify_bearer(authorization: str, issuers: dict[str, Issuer], jwks: JwksCache) -> Principal:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Denied("not_a_bearer_token")
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise Denied("malformed_token") from error
    algorithm = str(header.get("alg", ""))
    if algorithm.lower() == "none" or not algorithm:
        raise Denied("alg_none")
    issuer = issuers.get(str(unverified.get("iss", "")))
    if issuer is None:
        raise Denied("unknown_issuer")
    if algorithm not in issuer.algorithms:
        raise Denied("alg_not_allowed")
    if issuer.required_typ and str(header.get("typ", "")).lower() != issuer.required_typ:
        raise Denied("wrong_token_type")
    kid = header.get("kid")
    if not kid:
        raise Denied("missing_kid")
    key = jwks.key(issuer.jwks_url, str(kid))
    if key is None:
        raise Denied("unknown_kid")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=list(issuer.algorithms),
            audience=list(issuer.audiences),
            issuer=issuer.issuer,
            leeway=CLOCK_SKEW_S,
            options={"require": ["exp", "iat", "iss", "sub", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise Denied(_reason(error)) from error
    return Principal(
        client_id=str(claims.get("client_id") or claims["sub"]),
        credential_kind="jwt",
        scopes=tuple(str(claims.get("scope", "")).split()),
        tier=str(claims.get("tier", "free")),
        credential_id=str(claims.get("jti", "")),
    )
