"""Who may issue the bearer tokens we accept, and where their keys are.

- Our own authorization server: issuer, audience and signing keys come from the environment
  (TOKEN_ISSUER, TOKEN_AUDIENCE, TOKEN_VERIFY_KEY_IDS). Its "JWKS URL" is `kms:<key ids>`: the
  public keys are read from KMS once per container, never over HTTP through our own API.
- External issuers an admin configured (`/api/v1/gateway/issuers`): one GetItem on
  `ISSUER#<id of iss>` (reused per container only when `denylistCacheSeconds` > 0). Their JWKS
  is fetched like any call the gateway makes to others: the URL checked by the SSRF policy, the
  connection through the guarded pool manager (every resolved address checked, no redirects, no
  proxies), the body read raw under a byte cap and its Content-Encoding decoded under a small cap
  (gateway_core.bounded_decode), the whole fetch within a deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from functions.authorizer.jwt_token import MAX_LIFETIME_S, Issuer, JwksDocument
from functions.authorizer.ttl_cache import TtlCache
from gateway_core.issuer_keys import issuer_id, issuer_key
from gateway_core.settings import Settings
from gateway_core.ssrf import SsrfPolicy, validate_upstream_url

KMS_SCHEME = "kms:"
MAX_JWKS_RAW_BYTES = 256 * 1024  # as received, before any Content-Encoding is undone
MAX_JWKS_BYTES = 1024 * 1024  # decoded
JWKS_TIMEOUT_S = 3.0  # connect, and each receive
JWKS_DEADLINE_S = 5.0  # the whole fetch: a trickling answer must not hold the authorizer
READ_BYTES = 16 * 1024


@lru_cache(maxsize=4)
def own_issuer(config: Settings) -> Issuer | None:
    if not config.token_issuer or not config.token_verify_key_ids:
        return None
    return Issuer(
        issuer=config.token_issuer,
        jwks_url=KMS_SCHEME + ",".join(config.token_verify_key_ids),
        audiences=(config.token_audience,),
        algorithms=("RS256",),
        required_typ="at+jwt",
        own=True,
    )


def external_issuer(item: dict[str, Any]) -> Issuer | None:
    """The issuer an active item configures; None for a disabled one, or one this authorizer
    cannot use (written by hand, or before the accepted algorithms narrowed): its tokens are
    refused as from an unknown issuer rather than crash the decision."""
    if item.get("status", {}).get("S") != "active":
        return None
    try:
        return Issuer(
            issuer=item["issuer"]["S"],
            jwks_url=item["jwks_url"]["S"],
            audiences=tuple(a["S"] for a in item["audiences"]["L"]),
            algorithms=tuple(a["S"] for a in item["algorithms"]["L"]),
            issuer_id=item["issuer_id"]["S"],
            allowed_scopes=tuple(s["S"] for s in item.get("allowed_scopes", {}).get("L", [])),
            tier=item.get("tier", {}).get("S", "free"),
        )
    except (KeyError, TypeError, ValueError):
        return None


class IssuerDirectory:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache: TtlCache[Issuer] = TtlCache(ttl_s, clock, max_entries=1_000)

    def find(self, dynamodb: Any, table_name: str, own: Issuer | None, iss: str) -> Issuer | None:
        if own is not None and iss == own.issuer:
            return own
        if not iss:
            return None

        def load() -> Issuer | None:
            item = dynamodb.get_item(TableName=table_name, Key=issuer_key(issuer_id(iss)), ConsistentRead=True).get(
                "Item"
            )
            # The id is a hash prefix: compare the full issuer so a collision cannot borrow a config.
            return external_issuer(item) if item and item.get("issuer", {}).get("S") == iss else None

        return self._cache.get(iss, load)


def _seconds(value: str | None) -> int | None:
    value = (value or "").strip().strip('"')
    # Digits only, and few of them: a 5,000-digit value must not reach int() (ValueError).
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 12 else None


def _epoch(value: str | None) -> float | None:
    try:
        parsed = parsedate_to_datetime(value or "")
    except (TypeError, ValueError, IndexError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def cache_lifetime(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """How long an answer may be kept, from its headers (RFC 9111 4.2.1: `max-age`, else `Expires`
    minus `Date`, less `Age`), in seconds; 0 for no-store/no-cache or invalid values (5.2, 5.3:
    an invalid Expires means already expired); None when the answer says nothing."""
    directives: dict[str, str] = {}
    for part in (headers.get("Cache-Control") or "").split(","):
        name, _, value = part.partition("=")
        if name.strip():
            directives[name.strip().lower()] = value
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    age = _seconds(headers.get("Age")) or 0
    if "max-age" in directives:
        max_age = _seconds(directives["max-age"])
        return 0.0 if max_age is None else float(max_age - age)
    if headers.get("Expires") is not None:
        expires = _epoch(headers.get("Expires"))
        if expires is None:
            return 0.0
        date = _epoch(headers.get("Date"))
        return expires - (now_epoch if date is None else date) - age
    return None


class JwksFetchFailed(Exception):
    """The JWKS could not be fetched or was refused (the reason is the message)."""


@lru_cache(maxsize=4)
def _pool(policy: SsrfPolicy) -> Any:
    # urllib3 is loaded by botocore already; the guarded client only when a JWKS is fetched.
    from gateway_core.ssrf_client import guarded_pool_manager

    return guarded_pool_manager(policy, timeout=JWKS_TIMEOUT_S, maxsize=2)


def _read_body(response: Any, deadline: float) -> bytes:
    """The body decoded, one receive at a time: the raw bytes capped as they arrive, the decoded
    ones by the bounded decoder, the whole read by the deadline."""
    from gateway_core.bounded_decode import BoundedDecoder

    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > MAX_JWKS_RAW_BYTES:
        raise JwksFetchFailed(f"the JWKS answer is larger than {MAX_JWKS_RAW_BYTES} bytes")
    decoder = BoundedDecoder(response.headers.get("Content-Encoding", ""), MAX_JWKS_BYTES)
    received = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise JwksFetchFailed("the JWKS answer took too long")
        sock = getattr(response.connection, "sock", None)
        if sock is not None:
            sock.settimeout(min(left, JWKS_TIMEOUT_S))
        chunk = response.read1(READ_BYTES, decode_content=False)
        if not chunk:
            return decoder.finish()
        received += len(chunk)
        if received > MAX_JWKS_RAW_BYTES:
            raise JwksFetchFailed(f"the JWKS answer is larger than {MAX_JWKS_RAW_BYTES} bytes")
        decoder.feed(chunk)


def fetch_jwks(kms: Callable[[], Any], url: str, *, policy: SsrfPolicy | None = None) -> JwksDocument:
    """A JWKS document: our KMS keys, or an external issuer's (`policy`: the SSRF guard's, from
    the environment unless given). Raises on any failure; the JWKS cache keeps its last good set."""
    if url.startswith(KMS_SCHEME):
        from gateway_core.jwk import kms_public_jwk

        client = kms()
        keys = [kms_public_jwk(client, key_id) for key_id in url[len(KMS_SCHEME) :].split(",")]
        # A KMS key's public half never changes, and the key ids are the container's environment.
        return JwksDocument({"keys": keys}, lifetime_s=MAX_LIFETIME_S)
    policy = policy or SsrfPolicy.from_env()
    try:
        # Checked at registration too; again here for issuers stored before that, or an allowlist
        # that has narrowed since. The connection is checked once more after resolution.
        validate_upstream_url(url, policy)
    except ValueError as error:
        raise JwksFetchFailed(f"the JWKS URL is refused: {error}") from error
    deadline = time.monotonic() + JWKS_DEADLINE_S
    response = _pool(policy).urlopen(
        "GET",
        url,
        headers={"Accept": "application/jwk-set+json, application/json"},
        redirect=False,
        retries=False,
        preload_content=False,
        decode_content=False,
    )
    try:
        if response.status != 200:  # a redirect too: a JWKS is where it was configured
            raise JwksFetchFailed(f"the JWKS endpoint answered {response.status}")
        body = _read_body(response, deadline)
    finally:
        # Fetched at most once a minute: never worth keeping a connection that may hold unread bytes.
        response.close()
        response.release_conn()
    document = json.loads(body)
    if not isinstance(document, dict):
        raise JwksFetchFailed("the JWKS document is not an object")
    return JwksDocument(document, lifetime_s=cache_lifetime(response.headers, time.time()))
