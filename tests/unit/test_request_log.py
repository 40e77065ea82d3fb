"""What a request log keeps: no credentials, masked secrets, 1 KB of body at most."""

from __future__ import annotations

from functions.routes.logic.request_log import MASK, SAMPLE_BYTES, body_sample, safe_headers, safe_query


def test_credentials_are_dropped_and_secret_looking_headers_masked() -> None:
    kept = safe_headers(
        {
            "authorization": "Bearer t",
            "x-api-key": "k",
            "cookie": "s=1",
            "x-upstream-authorization": "Basic Zm9v",
            "x-session-id": "abc",
            "x-credential": "c",
            "accept": "application/json",
        }
    )
    assert kept == {
        "x-upstream-authorization": MASK,
        "x-session-id": MASK,
        "x-credential": MASK,
        "accept": "application/json",
    }


def test_secret_query_parameters_and_body_members_are_masked() -> None:
    assert safe_query({"auth": ["x"], "token": ["y"], "page": ["2"]}) == {
        "auth": [MASK],
        "token": [MASK],
        "page": ["2"],
    }
    sample = body_sample(b'{"credentials": {"user": "u"}, "amount": 1.50}', "application/json")
    assert sample == '{"credentials":"***","amount":1.50}'


def test_samples_are_capped_and_unreadable_json_is_not_kept() -> None:
    assert len(body_sample(b"x" * 5000, "text/plain")) == SAMPLE_BYTES
    assert "not kept" in body_sample(b'{"password": "hunter2"', "application/json")
    assert "hunter2" not in body_sample(b'{"password": "hunter2"', "application/json")
