"""Who may issue the bearer tokens we accept, and where their keys are.

- Our own authorization server: issuer, audience and signing keys come from the environment
  (TOKEN_ISSUER, TOKEN_AUDIENCE, TOKEN_VERIFY_KEY_IDS). Its "JWKS URL" is `kms:<key ids>`: the
  public keys are read from KMS once per container, never over HTTP through our own API.
- External issuers an admin configured (`/api/v1/gateway/issuers`): one GetItem on
  `ISSUER#<id of iss>` (reused per container only when `denylistCacheSeconds` > 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from functions.authorizer.jwt_token import Issuer, JwksDocument
from functions.authorizer.ttl_cache import TtlCache
from gateway_core.issuer_keys import issuer_id, issuer_key
from gateway_core.settings import Settings

KMS_SCHEME = "kms:"
MAX_JWKS_BYTES = 256 * 1024
JWKS_TIMEOUT_S = 3.0


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
    if item.get("status", {}).get("S") != "active":
        return None
    return Issuer(
        issuer=item["issuer"]["S"],
        jwks_url=item["jwks_url"]["S"],
        audiences=tuple(a["S"] for a in item["audiences"]["L"]),
        algorithms=tuple(a["S"] for a in item["algorithms"]["L"]),
        issuer_id=item["issuer_id"]["S"],
        allowed_scopes=tuple(s["S"] for s in item.get("allowed_scopes", {}).get("L", [])),
        tier=item.get("tier", {}).get("S", "free"),
    )


class IssuerDirectory:
    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache: TtlCache[Issuer] = TtlCache(ttl_s, clock, max_entries=1_000)

    def find(self, dynamodb: Any, table_name: str, own: Issuer | None, iss: str) -> Issuer | None:
        if own is not None and iss == own.issuer:
            return own
        if not iss:
            return None

        def load() -> Issuer | None:
            item = dynamodb.get_item(TableName=table_name, Key=issuer_key(issuer_id(iss))).get("Item")
            # The id is a hash prefix: compare the full issuer so a collision cannot borrow a config.
            return external_issuer(item) if item and item.get("issuer", {}).get("S") == iss else None

        return self._cache.get(iss, load)


def fetch_jwks(kms: Callable[[], Any], url: str) -> JwksDocument:
    """A JWKS document: our KMS keys, or an external issuer's over HTTPS (no redirects, bounded)."""
    if url.startswith(KMS_SCHEME):
        from gateway_core.jwk import kms_public_jwk

        client = kms()
        return JwksDocument({"keys": [kms_public_jwk(client, key_id) for key_id in url[len(KMS_SCHEME) :].split(",")]})
    import httpx  # only when an external issuer's keys are (re)fetched: off the warm path

    with httpx.Client(timeout=JWKS_TIMEOUT_S, follow_redirects=False) as http:
        response = http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        document = response.json()
    if not isinstance(document, dict):
        raise ValueError("JWKS document is not an object")
    return JwksDocument(document)
