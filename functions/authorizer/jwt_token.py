"""Bearer JWT checks for the JWT authorizer: our own access tokens and those of external issuers
an admin configured (issuer, JWKS URL, audiences, allowed algorithms).

RFC 8725: the algorithm comes from the issuer's configuration, never from the token alone
(`alg: none` and HMAC algorithms are never accepted, which also closes the "HS256 signed with our
RSA public key" confusion), and the key decides the rest (3.1): the key a token's `kid` names must
be a public signing key of the header's family and curve (and of its `alg`, when the JWK names
one), so no header can hand PyJWT a key of another type. Issuer and audience must match; `exp`
and `nbf` are enforced with 60 s of clock skew. Everything a token carries is untrusted until the
signature verifies: whatever it makes the parser or PyJWT raise is a 401, never a crash. PyJWT
does the JOSE work; this module decides which key and which rules apply.

JWKS: kept per issuer for the cache lifetime its answer gave (`Cache-Control: max-age`, else
`Expires`; no-store/no-cache count as the floor), bounded to 1 min .. 24 h, 5 min when it said
nothing, and refetched when a token arrives after that, so a key the issuer removed stops
verifying within the lifetime it announced. A token naming an unknown `kid` refetches early. Any
fetch is tried at most once a minute per issuer. When fetches fail, the last good set keeps
verifying for up to an hour past its lifetime (an issuer outage does not lock out its users at
once), then tokens are refused until a fetch succeeds.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import PyJWK

from functions.authorizer.core import Denied, Principal
from gateway_core.jwk import SUPPORTED_ALGORITHMS

CLOCK_SKEW_S = 60
REFETCH_INTERVAL_S = 60.0
MIN_LIFETIME_S = 60.0
MAX_LIFETIME_S = 24 * 3600.0
DEFAULT_LIFETIME_S = 300.0
MAX_STALE_S = 3600.0
# API Gateway refuses requests whose headers pass 10 KB in all: a longer Authorization value is
# no token anyone issued us, and is refused before any of it is decoded.
MAX_AUTHORIZATION_CHARS = 8 * 1024
MIN_RSA_BITS = 2048  # NIST SP 800-131A
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


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


@dataclass(frozen=True)
class VerificationKey:
    """A key of an issuer's JWKS: the JWK as published (its `use`, `key_ops`, `alg`) and the
    key object PyJWT built from it."""

    jwk: Mapping[str, Any]
    key: Any


@dataclass(frozen=True)
class JwksDocument:
    """A fetched JWKS document and how long the answer said it may be kept (seconds; None when
    it said nothing). The cache bounds it."""

    document: Mapping[str, Any]
    lifetime_s: float | None = None


class KeysUnavailable(Exception):
    """No key set to verify with: never fetched, or the last good one is too old."""


def parse_key_set(document: Mapping[str, Any]) -> dict[str, VerificationKey]:
    """The keys of a JWKS by `kid`; members PyJWT cannot build a key from are skipped (they are
    for other algorithms or other uses), a document without a `keys` list is refused."""
    members = document.get("keys")
    if not isinstance(members, list):
        raise ValueError("a JWKS document has a list of keys")
    keys: dict[str, VerificationKey] = {}
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("kid"), str) or not member["kid"]:
            continue
        try:
            built = PyJWK(member)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        keys[member["kid"]] = VerificationKey(jwk=member, key=built.key)
    return keys


def unusable_reason(key: VerificationKey, algorithm: str) -> str | None:
    """Why `key` may not verify a token signed with `algorithm` (None when it may)."""
    use, ops = key.jwk.get("use", "sig"), key.jwk.get("key_ops")
    if use != "sig" or (ops is not None and (not isinstance(ops, list) or "verify" not in ops)):
        return "key_not_for_signing"
    if "alg" in key.jwk and key.jwk["alg"] != algorithm:
        return "alg_key_mismatch"
    public = key.key
    if algorithm in _RSA_ALGORITHMS:
        fits = isinstance(public, RSAPublicKey)
    elif algorithm in _EC_CURVES:
        fits = isinstance(public, EllipticCurvePublicKey) and public.curve.name == _EC_CURVES[algorithm]
    elif algorithm == "EdDSA":
        fits = isinstance(public, Ed25519PublicKey | Ed448PublicKey)
    else:
        fits = False
    if not fits:
        return "alg_key_mismatch"  # also a private key a JWKS published by mistake
    if isinstance(public, RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        return "weak_key"
    return None


@dataclass
class _Entry:
    keys: dict[str, VerificationKey] | None = None  # None until a fetch succeeds
    fresh_until: float = 0.0
    usable_until: float = 0.0
    last_attempt: float | None = None


def bounded_lifetime(said: float | None) -> float:
    if said is None:
        return DEFAULT_LIFETIME_S
    return min(max(said, MIN_LIFETIME_S), MAX_LIFETIME_S)


class JwksCache:
    """Key sets per JWKS URL; `fetch(url)` returns the JWKS document with its cache lifetime."""

    def __init__(
        self,
        fetch: Callable[[str], JwksDocument],
        clock: Callable[[], float] = time.monotonic,
        refetch_interval_s: float = REFETCH_INTERVAL_S,
        max_stale_s: float = MAX_STALE_S,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._interval = refetch_interval_s
        self._max_stale = max_stale_s
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def _refresh(self, url: str, entry: _Entry, now: float) -> None:
        if entry.last_attempt is not None and now - entry.last_attempt < self._interval:
            return  # tried recently: neither unknown kids nor a failing issuer make us hammer it
        entry.last_attempt = now
        self.fetches += 1
        try:
            fetched = self._fetch(url)
            keys = parse_key_set(fetched.document)
        except Exception:  # noqa: BLE001 - keep the last good keys while they are usable
            return
        entry.keys = keys
        entry.fresh_until = now + bounded_lifetime(fetched.lifetime_s)
        entry.usable_until = entry.fresh_until + self._max_stale

    def key(self, url: str, kid: str) -> VerificationKey | None:
        """The key `kid` of the set at `url` (None when the current set has no such key), or
        KeysUnavailable."""
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            now = self._clock()
            if now >= entry.fresh_until or entry.keys is None or kid not in entry.keys:
                self._refresh(url, entry, now)
            if entry.keys is None or now >= entry.usable_until:
                raise KeysUnavailable(url)
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
    if len(authorization) > MAX_AUTHORIZATION_CHARS:
        raise Denied("token_too_large")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Denied("not_a_bearer_token")
    token = token.strip()
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except Exception as error:  # whatever unverified bytes make the parser raise is a refusal
        raise Denied("malformed_token") from error
    algorithm = header.get("alg")
    if algorithm is None or (isinstance(algorithm, str) and algorithm.lower() in ("", "none")):
        raise Denied("alg_none")
    if not isinstance(algorithm, str):
        raise Denied("malformed_token")
    iss = unverified.get("iss")
    issuer = lookup(iss) if isinstance(iss, str) else None
    if issuer is None:
        raise Denied("unknown_issuer")
    if algorithm not in issuer.algorithms:
        raise Denied("alg_not_allowed")
    if issuer.required_typ and str(header.get("typ", "")).lower() != issuer.required_typ:
        raise Denied("wrong_token_type")
    kid = header.get("kid")
    if not kid:
        raise Denied("missing_kid")
    if not isinstance(kid, str):
        raise Denied("malformed_token")
    try:
        key = jwks.key(issuer.jwks_url, kid)
    except KeysUnavailable as error:
        raise Denied("jwks_unavailable") from error
    if key is None:
        raise Denied("unknown_kid")
    unusable = unusable_reason(key, algorithm)
    if unusable:
        raise Denied(unusable)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],  # the one the key fits, among the issuer's
            audience=list(issuer.audiences),
            issuer=issuer.issuer,
            leeway=CLOCK_SKEW_S,
            options={"require": ["exp", "iat", "iss", "sub", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise Denied(_reason(error)) from error
    except Exception as error:  # an untrusted token is refused, whatever PyJWT raises on it
        raise Denied("invalid_token") from error
    # PyJWT compares the times as Python numbers, so `exp: 1e400`-sized integers pass it; the
    # decision's end (`not_after`) is a float, so each time claim must be one.
    for claim in ("exp", "iat", "nbf"):
        if claim in claims and not _finite_time(claims[claim]):
            raise Denied("invalid_token")
    return issuer, claims


def _finite_time(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


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
