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

import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from functions.authorizer.core import Denied, Principal
from gateway_core.jwk import SUPPORTED_ALGORITHMS

CLOCK_SKEW_S = 60
REFETCH_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Issuer:
    issuer: str
    jwks_url: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...] = ("RS256",)
    required_typ: str | None = None  # our own tokens are "at+jwt" (RFC 9068)
    own: bool = False  # our authorization server: `sub` is one of our clients
    issuer_id: str = ""  # external issuers: their id in the admin API, namespacing their subjects
    allowed_scopes: tuple[str, ...] | None = None  # external issuers: scopes we accept from them
    tier: str = "free"  # external issuers: the tier their callers get

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


IssuerLookup = Callable[[str], "Issuer | None"]


def decode_bearer(authorization: str, lookup: IssuerLookup, jwks: JwksCache) -> tuple[Issuer, dict[str, Any]]:
    """The verified claims of a bearer token and the issuer that vouches for them."""
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
    issuer = lookup(str(unverified.get("iss", "")))
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
    return issuer, claims


def bound_thumbprint(claims: dict[str, Any], presented_x5t: str) -> str:
    """RFC 8705 §3: a token with `cnf.x5t#S256` is only good with that certificate. Returns the
    bound thumbprint ("" for an unbound token)."""
    cnf = claims.get("cnf")
    if cnf is None:
        return ""
    bound = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    if not isinstance(bound, str) or not bound:
        raise Denied("unsupported_confirmation")
    if not presented_x5t:
        raise Denied("certificate_required")
    if not hmac.compare_digest(bound, presented_x5t):
        raise Denied("certificate_mismatch")
    return bound


def scopes_of(claims: dict[str, Any]) -> tuple[str, ...]:
    """`scope` (RFC 9068, space-separated) or `scp` (a list, as some issuers send it)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return tuple(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return tuple(str(s) for s in scp)
    return ()


def verify_bearer(authorization: str, issuers: Mapping[str, Issuer], jwks: JwksCache) -> Principal:
    """Signature and claims only, with the token's own scopes and tier (no client record)."""
    _, claims = decode_bearer(authorization, issuers.get, jwks)
    return Principal(
        client_id=str(claims.get("client_id") or claims["sub"]),
        credential_kind="jwt",
        scopes=scopes_of(claims),
        tier=str(claims.get("tier", "free")),
        credential_id=str(claims.get("jti", "")),
    )
