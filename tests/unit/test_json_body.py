"""gateway_core.json_body: the one set of rules every JSON request body is read by. What is
accepted is exactly JSON in UTF-8; each family of bad bodies is refused with its own problem."""

from __future__ import annotations

import pytest

from gateway_core.errors import BadRequest, GatewayError, PayloadTooLarge, UnsupportedMediaType
from gateway_core.json_body import MAX_BODY_BYTES, MAX_DEPTH, MAX_NUMBER_CHARS, read_json

JSON = "application/json"


def _nested(depth: int) -> bytes:
    return b"[" * (depth - 1) + b"{}" + b"]" * (depth - 1)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', JSON, {"a": [1, 2.5, "x", None, True]}),
        (b'{"a": 1}', "application/json; charset=utf-8", {"a": 1}),
        (b'{"a": 1}', 'Application/JSON; Charset="UTF-8"', {"a": 1}),
        (b'{"a": 1}', "application/merge-patch+json", {"a": 1}),
        (b'{"a": 1}', None, {"a": 1}),
        (b'{"name": "Zo\xc3\xab \xe2\x82\xac \xf0\x9f\x92\xb6"}', JSON, {"name": "Zoë € 💶"}),
        (b'{"pair": "\\ud83d\\udcb6"}', JSON, {"pair": "💶"}),
        (b"[]", JSON, []),
        (b"", JSON, None),
        (b"", "text/plain", None),
    ],
)
def test_json_in_utf8_is_read_as_its_value(body: bytes, content_type: str | None, expected: object) -> None:
    assert read_json(body, content_type) == expected


def test_nesting_up_to_the_limit_and_numbers_up_to_their_length_are_read() -> None:
    assert read_json(_nested(MAX_DEPTH), JSON) is not None
    assert read_json(b'{"n": ' + b"9" * MAX_NUMBER_CHARS + b"}", JSON) == {"n": int("9" * MAX_NUMBER_CHARS)}
    assert read_json(b'{"n": 1e40}', JSON) == {"n": 1e40}  # the models bound what a number may be


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("text/plain", None),
        ("application/xml", None),
        ("text/json", None),
        ("application/x-www-form-urlencoded", None),
        ("multipart/form-data; boundary=b", None),
        ("application/jsonx", None),
        ("application/json, text/plain", None),
        ("application/json; charset=utf-16", None),
        ("application/json; charset=latin-1", None),
        ("", "gzip"),
        (JSON, "gzip"),
        (JSON, "deflate, identity"),
    ],
)
def test_a_body_labelled_other_than_utf8_json_is_415(content_type: str, encoding: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        read_json(b'{"a": 1}', content_type, content_encoding=encoding)
    assert caught.value.status == 415
    assert caught.value.extensions["accepted"] == [JSON]
    # RFC 9110 §15.5.16 / RFC 7694: the answer names what would have been taken.
    assert caught.value.headers == ({"Accept-Encoding": "identity"} if encoding else {"Accept": JSON})


def test_a_body_over_the_limit_is_413_whatever_it_holds() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        read_json(b" " * (MAX_BODY_BYTES + 1), "text/plain")
    assert caught.value.status == 413
    assert read_json(b'"' + b"a" * 98 + b'"', JSON, limit=100) == "a" * 98
    with pytest.raises(PayloadTooLarge):
        read_json(b'"' + b"a" * 99 + b'"', JSON, limit=100)


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b'{"a": "\xff"}', "not_utf8"),
        (b'{"a": "\xc0\xaf"}', "not_utf8"),  # an overlong encoding of "/"
        (b'{"a": "\xed\xa0\x80"}', "not_utf8"),  # a surrogate encoded directly
        ('{"a": 1}'.encode("utf-16-le"), "json_invalid"),
        ('{"a": 1}'.encode("utf-16"), "byte_order_mark"),
        ('{"a": 1}'.encode("utf-32"), "byte_order_mark"),
        (b'\xef\xbb\xbf{"a": 1}', "byte_order_mark"),
        (b"<a>1</a>", "json_invalid"),
        (b'{"a": 1', "json_invalid"),
        (b'{"a": 1} {"b": 2}', "json_invalid"),
        (b"   ", "json_invalid"),
        (b'{"a": "line\nbreak"}', "json_invalid"),  # a raw control character in a string
        (b'{"a": NaN}', "number_not_finite"),
        (b'{"a": Infinity}', "number_not_finite"),
        (b'{"a": -Infinity}', "number_not_finite"),
        (b'{"a": 1e400}', "number_out_of_range"),
        (b'{"a": -1e400}', "number_out_of_range"),
        (b'{"a": ' + b"9" * 5000 + b"}", "number_too_long"),
        (b'{"a": ' + b"9" * (MAX_NUMBER_CHARS + 1) + b"}", "number_too_long"),
        (b'{"a": 0.' + b"1" * MAX_NUMBER_CHARS + b"}", "number_too_long"),
        (b'{"a": 1, "a": 2}', "duplicate_name"),
        (b'[{"x": {"b": 1, "c": 2, "b": 1}}]', "duplicate_name"),
        (b'{"a": "\\ud800"}', "invalid_unicode"),
        (b'{"\\udc00": 1}', "invalid_unicode"),
        (b'["\\ud83d"]', "invalid_unicode"),
        (_nested(MAX_DEPTH + 1), "too_deep"),
        (b'{"a":' * 200 + b"1" + b"}" * 200, "too_deep"),
        (b"[" * 10_000 + b"]" * 10_000, "too_deep"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too_deep"),
    ],
)
def test_a_body_that_is_not_well_formed_json_is_400_invalid_body_saying_why(body: bytes, kind: str) -> None:
    with pytest.raises(BadRequest) as caught:
        read_json(body, JSON)
    error = caught.value
    assert (error.status, error.code) == (400, "invalid_body")
    assert [e["type"] for e in error.extensions["errors"]] == [kind]
    assert error.extensions["errors"][0]["loc"][0] == "body"


def test_refusals_never_echo_more_than_a_short_excerpt_of_the_body() -> None:
    secret = "s3cr3t-" * 1000
    for body in (b'{"' + secret.encode() + b'": 1, "' + secret.encode() + b'": 2}', b'{"a": ' + b"9" * 5000 + b"}"):
        with pytest.raises(GatewayError) as caught:
            read_json(body, JSON)
        assert len(str(caught.value.detail)) < 200
        assert len(str(caught.value.extensions)) < 300
