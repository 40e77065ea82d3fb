"""Standard Webhooks signatures (functions.webhooks.logic.signing), checked by verifiers that are
not ours: the `standardwebhooks` reference package for v1 (HMAC), `cryptography` per the spec for
v1a (ed25519), and the reference libraries' own test vectors for both."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from standardwebhooks import Webhook, WebhookVerificationError

from functions.webhooks.logic import signing
from functions.webhooks.logic.signing import new_asymmetric_keypair, new_symmetric_secret, sign

MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = json.dumps(
    {"type": "key.rotated", "timestamp": "2026-12-02T12:00:00Z", "data": {"amount": "12.50", "name": "Zoë"}},
    separators=(",", ":"),
    ensure_ascii=False,
).encode()


def headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def signatures(header: str, version: str) -> list[bytes]:
    return [base64.b64decode(s.split(",", 1)[1]) for s in header.split(" ") if s.split(",", 1)[0] == version]


def public_key(public: str) -> Ed25519PublicKey:
    assert public.startswith("whpk_")
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(public.removeprefix("whpk_"), validate=True))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# The reference libraries' own vectors (standard-webhooks/libraries: python tests/test_webhooks.py
# test_sign_function, go webhook_asymmetric_test.go TestAsymmetricWebhookSign): same id, time and body.
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'


def test_v1_matches_the_reference_vector() -> None:
    # Given the reference secret (24 bytes, the spec's minimum) / When signed
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])

    # Then it is exactly the reference signature
    assert header == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_v1a_matches_the_reference_vector() -> None:
    # Given the reference private key: base64 of the 32-byte ed25519 seed / When signed
    header = sign(VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY, ["whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="])

    # Then it is exactly the reference signature (ed25519 is deterministic)
    assert header == ("v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==")


def test_a_new_secret_is_32_random_bytes() -> None:
    # When
    first, second = new_symmetric_secret(), new_symmetric_secret()

    # Then
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_v1_signature_is_verified_by_the_reference_package() -> None:
    # Given
    secret = new_symmetric_secret()
    now = int(time.time())

    # When
    header = sign(MSG_ID, now, BODY, [secret])

    # Then the reference verifier accepts it and gives back the body
    assert header.startswith("v1,")
    assert " " not in header
    assert Webhook(secret).verify(BODY, headers(MSG_ID, now, header)) == json.loads(BODY)


@pytest.mark.parametrize(
    ("msg_id", "shift", "body"),
    [
        pytest.param("msg_other", 0, BODY, id="id"),
        pytest.param(MSG_ID, -1, BODY, id="timestamp"),
        pytest.param(MSG_ID, 0, BODY.replace(b"12.50", b"12.51"), id="body"),
        pytest.param(MSG_ID, 0, BODY + b" ", id="trailing-space"),
    ],
)
def test_tampered_v1_deliveries_fail(msg_id: str, shift: int, body: bytes) -> None:
    # Given a delivery signed now
    secret = new_symmetric_secret()
    now = int(time.time())
    header = sign(MSG_ID, now, BODY, [secret])

    # When the id, timestamp (still within the tolerance) or body is changed / Then it no longer verifies
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(secret).verify(body, headers(msg_id, now + shift, header))


def test_v1_with_another_secret_fails() -> None:
    now = int(time.time())
    header = sign(MSG_ID, now, BODY, [new_symmetric_secret()])

    with pytest.raises(WebhookVerificationError):
        Webhook(new_symmetric_secret()).verify(BODY, headers(MSG_ID, now, header))


def test_a_new_keypair_is_an_ed25519_seed_and_its_public_key() -> None:
    # When
    private, public = new_asymmetric_keypair()

    # Then both are prefixed base64 of 32 raw bytes, and the public key is the seed's
    assert private.startswith("whsk_")
    assert public.startswith("whpk_")
    seed = base64.b64decode(private.removeprefix("whsk_"), validate=True)
    raw_public = base64.b64decode(public.removeprefix("whpk_"), validate=True)
    assert len(seed) == len(raw_public) == 32
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert derived == raw_public
    assert new_asymmetric_keypair()[0] != private


def test_v1a_signature_verifies_with_the_public_key() -> None:
    # Given
    private, public = new_asymmetric_keypair()
    now = int(time.time())

    # When
    header = sign(MSG_ID, now, BODY, [private])

    # Then it is one v1a signature of "{id}.{timestamp}.{body}" under the public key
    assert header.startswith("v1a,")
    [signature] = signatures(header, "v1a")
    assert len(signature) == 64
    public_key(public).verify(signature, f"{MSG_ID}.{now}.".encode() + BODY)


@pytest.mark.parametrize(
    ("msg_id", "shift", "body"),
    [
        pytest.param("msg_other", 0, BODY, id="id"),
        pytest.param(MSG_ID, 1, BODY, id="timestamp"),
        pytest.param(MSG_ID, 0, BODY.replace(b"12.50", b"12.51"), id="body"),
    ],
)
def test_tampered_v1a_deliveries_fail(msg_id: str, shift: int, body: bytes) -> None:
    private, public = new_asymmetric_keypair()
    now = int(time.time())
    [signature] = signatures(sign(MSG_ID, now, BODY, [private]), "v1a")

    with pytest.raises(InvalidSignature):
        public_key(public).verify(signature, f"{msg_id}.{now + shift}.".encode() + body)


def test_v1a_does_not_verify_under_another_public_key() -> None:
    private, _ = new_asymmetric_keypair()
    _, other_public = new_asymmetric_keypair()
    [signature] = signatures(sign(MSG_ID, 1_700_000_000, BODY, [private]), "v1a")

    with pytest.raises(InvalidSignature):
        public_key(other_public).verify(signature, f"{MSG_ID}.1700000000.".encode() + BODY)


def test_rotation_header_verifies_with_either_secret_newest_first() -> None:
    # Given a rotation grace: the new secret and the old one
    new, old = new_symmetric_secret(), new_symmetric_secret()
    now = int(time.time())

    # When
    header = sign(MSG_ID, now, BODY, [new, old])

    # Then two space-separated v1 signatures, the new secret's first, and either secret verifies
    first, second = header.split(" ")
    assert first == sign(MSG_ID, now, BODY, [new])
    assert second == sign(MSG_ID, now, BODY, [old])
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers(MSG_ID, now, header)) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_symmetric_secret()).verify(BODY, headers(MSG_ID, now, header))


def test_mixed_header_carries_both_schemes() -> None:
    # Given an endpoint moving from a symmetric secret to an ed25519 key
    private, public = new_asymmetric_keypair()
    secret = new_symmetric_secret()
    now = int(time.time())

    # When
    header = sign(MSG_ID, now, BODY, [private, secret])

    # Then the reference verifier skips the v1a signature and checks the v1, and the v1a checks out too
    assert [part.split(",", 1)[0] for part in header.split(" ")] == ["v1a", "v1"]
    assert Webhook(secret).verify(BODY, headers(MSG_ID, now, header)) == json.loads(BODY)
    [signature] = signatures(header, "v1a")
    public_key(public).verify(signature, f"{MSG_ID}.{now}.".encode() + BODY)


def test_an_empty_body_is_signed() -> None:
    secret = new_symmetric_secret()
    now = int(time.time())
    header = sign(MSG_ID, now, b"", [secret])

    assert Webhook(secret).verify(b"", headers(MSG_ID, now, header), json_parse=False) is None


VALID_SEED = b64(bytes(range(32)))


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("whsec_", id="secret-without-bytes"),
        pytest.param("whsec_not base64!", id="secret-not-base64"),
        pytest.param("whsec_" + b64(b"k" * 32).rstrip("="), id="secret-unpadded"),
        pytest.param("whsec_" + base64.urlsafe_b64encode(bytes(range(224, 256))).decode(), id="secret-urlsafe"),
        pytest.param("whsec_" + b64(b"k" * 16), id="secret-too-short"),
        pytest.param("whsec_" + b64(b"k" * 65), id="secret-too-long"),
        pytest.param("whsec_" + b64(b"k" * 32)[:-2] + "x=", id="secret-non-canonical"),
        pytest.param("whsec_ " + b64(b"k" * 32), id="secret-with-space"),
        pytest.param("WHSEC_" + b64(b"k" * 32), id="prefix-case"),
        pytest.param(b64(b"k" * 32), id="no-prefix"),
        pytest.param("sk_live_" + b64(b"k" * 32), id="unknown-prefix"),
        pytest.param("whsk_" + b64(bytes(31)), id="seed-too-short"),
        pytest.param("whsk_" + b64(bytes(64)), id="seed-plus-public-key"),
        pytest.param("whsk_" + VALID_SEED[:-1], id="seed-truncated"),
        pytest.param("whpk_" + VALID_SEED, id="public-key"),
    ],
)
def test_malformed_keys_raise_without_echoing_the_key(key: str) -> None:
    with pytest.raises(ValueError, match=r"key|secret") as raised:
        sign(MSG_ID, 1_700_000_000, BODY, [key])

    material = key.split("_", 1)[-1]
    assert not material or material not in str(raised.value)


def test_one_malformed_key_fails_the_whole_header() -> None:
    # A header missing a signature would fail silently for the consumer holding that key.
    with pytest.raises(ValueError, match="whsk_"):
        sign(MSG_ID, 1_700_000_000, BODY, [new_symmetric_secret(), "whsk_" + b64(bytes(5))])


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "keys", "message"),
    [
        pytest.param("", 1_700_000_000, ["whsec_" + b64(bytes(32))], "webhook id", id="empty-id"),
        pytest.param("msg.1", 1_700_000_000, ["whsec_" + b64(bytes(32))], "webhook id", id="dot-in-id"),
        pytest.param(MSG_ID, -1, ["whsec_" + b64(bytes(32))], "timestamp", id="negative-timestamp"),
        pytest.param(MSG_ID, True, ["whsec_" + b64(bytes(32))], "timestamp", id="bool-timestamp"),
        pytest.param(MSG_ID, 1_700_000_000.5, ["whsec_" + b64(bytes(32))], "timestamp", id="float-timestamp"),
        pytest.param(MSG_ID, 1_700_000_000, [], "at least one", id="no-keys"),
        pytest.param(MSG_ID, 1_700_000_000, "whsec_" + b64(bytes(32)), "sequence", id="one-string-not-a-list"),
        pytest.param(MSG_ID, 1_700_000_000, [b"whsec_" + b64(bytes(32)).encode()], "strings", id="bytes-key"),
    ],
)
def test_bad_arguments_raise(msg_id: str, timestamp: object, keys: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign(msg_id, timestamp, BODY, keys)  # type: ignore[arg-type]


def test_each_key_is_decoded_once() -> None:
    # Given a key signed with once
    secret = new_symmetric_secret()
    sign(MSG_ID, 1_700_000_000, BODY, [secret])
    before = signing._signer.cache_info()

    # When the worker signs more attempts with it
    for attempt in range(5):
        sign(MSG_ID, 1_700_000_001 + attempt, BODY, [secret])

    # Then every one was a cache hit, no new decode
    after = signing._signer.cache_info()
    assert after.hits - before.hits == 5
    assert after.misses == before.misses
