"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec "Signature scheme").

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the `webhook-signature` header is a
space-separated list of `<version>,<base64 signature>`, one per key, so that during a rotation grace
the consumer verifies with whichever key it knows.

- Symmetric: secret `whsec_` + base64(random bytes), signature `v1,` + base64(HMAC-SHA256).
- Asymmetric: ed25519, private key `whsk_` + base64(32-byte seed), public key `whpk_` +
  base64(32-byte raw public key), signature `v1a,` + base64(64-byte ed25519 signature). These are
  the encodings of the reference libraries (standard-webhooks/libraries: the Go one decodes the
  private key with ed25519.NewKeyFromSeed).

Base64 is the standard alphabet with padding, decoded strictly: a stored key that does not read
back exactly is corrupt, and signing with it would only produce signatures nobody can verify.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable, Sequence
from functools import lru_cache

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's marker for a secret, not a secret
PRIVATE_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

SECRET_BYTES = 32
# The spec's bounds for a symmetric secret: at least 24 bytes (192 bits), at most 512 bits.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
ED25519_KEY_BYTES = 32

Signer = Callable[[bytes], str]


def new_symmetric_secret() -> str:
    """A fresh `whsec_` secret of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_asymmetric_keypair() -> tuple[str, str]:
    """A fresh ed25519 key pair: (`whsk_` private seed, `whpk_` public key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    seed = base64.b64encode(private.private_bytes_raw()).decode("ascii")
    return PRIVATE_KEY_PREFIX + seed, PUBLIC_KEY_PREFIX + base64.b64encode(public).decode("ascii")


def sign(msg_id: str, timestamp: int, body: bytes, keys: Sequence[str]) -> str:
    """The `webhook-signature` header value: one signature per key, in the order given (newest first)."""
    if not msg_id or "." in msg_id:
        # A '.' would let one (id, timestamp, body) triple pass for another; ids are ours, never callers'.
        raise ValueError("a webhook id must be non-empty and contain no '.'")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("a webhook timestamp must be a non-negative integer (epoch seconds)")
    if isinstance(keys, str) or not keys:
        raise ValueError("at least one signing key is needed, given as a sequence of keys")
    if not all(isinstance(key, str) for key in keys):
        raise ValueError("signing keys must be strings")
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(_signer(key)(content) for key in keys)


@lru_cache(maxsize=1024)
def _signer(key: str) -> Signer:
    """Decodes a key once per container: the delivery worker signs every attempt with the same few keys."""
    if key.startswith(SECRET_PREFIX):
        secret = _decode(key, SECRET_PREFIX)
        if not MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES:
            raise ValueError(f"a {SECRET_PREFIX} secret must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
        return lambda content: "v1," + _b64(hmac.digest(secret, content, "sha256"))
    if key.startswith(PRIVATE_KEY_PREFIX):
        seed = _decode(key, PRIVATE_KEY_PREFIX)
        if len(seed) != ED25519_KEY_BYTES:
            raise ValueError(f"a {PRIVATE_KEY_PREFIX} key must be a {ED25519_KEY_BYTES}-byte ed25519 seed")
        # Imported for v1a keys only: most endpoints sign with HMAC, and cryptography is a tenth
        # of the worker's cold start.
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        private = Ed25519PrivateKey.from_private_bytes(seed)
        return lambda content: "v1a," + _b64(private.sign(content))
    if key.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError(f"a {PUBLIC_KEY_PREFIX} public key verifies signatures, it cannot make them")
    # Never echo the key: it is a secret, and errors end up in logs.
    raise ValueError(f"unknown signing key format (expected {SECRET_PREFIX} or {PRIVATE_KEY_PREFIX})")


def _decode(key: str, prefix: str) -> bytes:
    text = key[len(prefix) :]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a {prefix} key must be standard base64") from None
    if _b64(raw) != text:
        # validate=True still accepts some non-canonical spellings (stray bits in the last character).
        raise ValueError(f"a {prefix} key must be canonical standard base64")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
