"""gateway_core.secret_names: the one list of names that hold secrets, and the drift guard: what a
route may not hold as a literal (functions.routes.logic.redaction) and what a log line never shows
(gateway_core.logs) are the same names."""

from __future__ import annotations

import pytest

from functions.routes.logic.redaction import literal_credential
from gateway_core.logs import REDACTED, redact
from gateway_core.secret_names import is_secret_name, secret_spans

# Secret wherever they stand: a header, a query parameter, a JSON member, an XML element.
SECRET_EVERYWHERE = [
    "api_key",
    "apikey",
    "API_KEY",
    "Api-Key",
    "X-Api-Key",
    "X-API-KEY",
    "apiKey",
    "APIKey",
    "api%5Fkey",
    "x-api-key",
    "access_token",
    "accessToken",
    "refresh_token",
    "id_token",
    "X-Auth-Token",
    "X-Amz-Security-Token",
    "token",
    "secret",
    "client_secret",
    "clientSecret",
    "X-Client-Secret",
    "password",
    "Password",
    "new_password",
    "dbPassword",
    "passwd",
    "pwd",
    "pass",
    "passphrase",
    "passcode",
    "signature",
    "X-Signature",
    "X-Amz-Signature",
    "sig",
    "X-Amz-Credential",
    "credentials",
    "authorization",
    "Authorization",
    "Proxy-Authorization",
    "auth",
    "X-Auth",
    "Cookie",
    "Set-Cookie",
    "private_key",
    "secret_key",
    "aws_secret_access_key",
    "api_keys",
    "client_assertion",
    "session_id",
    "sessionId",
    "auth_code",
    "authorization_code",
    "security_code",
    "otp",
]
# Secret as a parameter or header (`?key=` is Google's API key, `?code=` OAuth's authorization
# code and Azure Functions' key); as a JSON member or XML element they name look-ups and currencies.
SECRET_AS_PARAMETERS = ["key", "code", "Key", "CODE"]
NEVER_SECRET = [
    "token_type",
    "tokens_used",
    "token_count",
    "next_token",
    "page_token",
    "key_id",
    "secret_name",
    "signature_method",
    "signature_version",
    "auth_required",
    "auth_type",
    "idempotency_key",
    "Idempotency-Key",
    "public_key",
    "sort_key",
    "partition_key",
    "cache_key",
    "routing_key",
    "country_code",
    "currency_code",
    "error_code",
    "sort_code",
    "monkey",
    "keyword",
    "author",
    "bypass",
    "passenger",
    "page",
    "limit",
    "format",
    "session_date",
]


@pytest.mark.parametrize("name", SECRET_EVERYWHERE)
def test_secret_names_are_secret_in_every_place(name: str) -> None:
    assert is_secret_name(name)
    assert is_secret_name(name, member=True)


@pytest.mark.parametrize("name", SECRET_AS_PARAMETERS)
def test_key_and_code_alone_are_secret_as_parameters_only(name: str) -> None:
    assert is_secret_name(name)
    assert not is_secret_name(name, member=True)


@pytest.mark.parametrize("name", NEVER_SECRET)
def test_names_that_describe_or_merely_contain_a_secret_word_are_not_secret(name: str) -> None:
    assert not is_secret_name(name)
    assert not is_secret_name(name, member=True)


@pytest.mark.parametrize("name", SECRET_EVERYWHERE + SECRET_AS_PARAMETERS + NEVER_SECRET)
def test_routes_and_logs_agree_on_every_name(name: str) -> None:
    # The drift guard: a query rule `name: <literal>` is refused exactly when a log line hides
    # `name=<value>`.
    logged = redact(f"GET https://h.example/v1?{name}=v-123&page=2")
    assert (REDACTED in logged) == literal_credential(name, "v-123") == is_secret_name(name)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("a=1&client_secret=abc&b=2", ["abc"]),
        ("Foo(token='abc', page=2)", ["abc"]),
        ('call(password="p w", user="u")', ["p w"]),
        ("{'password': 'abc', 'user': 'u'}", ["abc"]),
        ('{"apiKey": "abc", "code": "EUR"}', ["abc"]),
        ("<soap:Body><wsse:Password Type='t'>abc</wsse:Password><Nonce>n</Nonce></soap:Body>", ["abc"]),
        ("<Code>EUR</Code><SecurityToken>tok</SecurityToken>", ["tok"]),
        ("code=x1&currency_code=EUR", ["x1"]),
        ("token= empty", []),
        ('cut: password="abc', ["abc"]),
        ("nothing here", []),
    ],
)
def test_the_values_of_secret_names_are_found_in_text_in_each_form(text: str, values: list[str]) -> None:
    assert [text[start:end] for start, end in secret_spans(text)] == values
