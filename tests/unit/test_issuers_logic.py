"""External issuer rules (functions/routes/logic/issuers.py): which URLs, algorithms and scopes an
admin may configure."""

from __future__ import annotations

import pytest

from functions.routes.logic.issuers import IssuerSpec, check_url, validate
from gateway_core.errors import ValidationFailed


@pytest.mark.parametrize(
    "url",
    [
        "https://login.partner.example/tenant/v2.0",
        "https://idp.example:8443/keys",
        "http://127.0.0.1:9000/jwks",
        "http://[::1]:9000/jwks",
        "http://localhost/jwks",
    ],
)
def test_https_urls_and_plain_http_on_loopback_are_accepted(url: str) -> None:
    assert check_url(url, "jwks_url", max_length=2048) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://idp.example/jwks",  # plain http off loopback
        "http://10.0.0.5/jwks",
        "ftp://idp.example/jwks",
        "https://user:secret@idp.example/jwks",
        "https://idp.example/jwks?x=1",
        "https://idp.example/jwks#frag",
        "https:///nohost",
        "https://idp.example:99999/jwks",
        "https://" + "a" * 3000 + ".example",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_url(url, "jwks_url", max_length=2048)
    assert refused.value.code == "invalid_url"


def _spec(**changes: object) -> IssuerSpec:
    values: dict[str, object] = {
        "jwks_url": "https://idp.example/jwks",
        "audiences": ["bank-api"],
        "algorithms": ["ES256"],
        "allowed_scopes": ["data:read"],
        "tier": "basic",
    }
    values.update(changes)
    return IssuerSpec(**values)  # type: ignore[arg-type]


def test_a_valid_spec_is_normalised() -> None:
    checked = validate(_spec(audiences=[" b ", "a", "a"], algorithms=["RS256", "ES256"], allowed_scopes=[]))
    assert (checked.audiences, checked.algorithms, checked.allowed_scopes) == (["a", "b"], ["ES256", "RS256"], [])
    assert validate(_spec(algorithms=[])).algorithms == ["RS256"]  # the default when none is given


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"algorithms": ["HS256"]}, "unsupported_algorithm"),
        ({"algorithms": ["none"]}, "unsupported_algorithm"),
        ({"allowed_scopes": ["admin", "data:read"]}, "scope_not_grantable"),
        ({"allowed_scopes": ["root"]}, "unknown_scope"),
        ({"audiences": []}, "invalid_audiences"),
        ({"audiences": [" "]}, "invalid_audiences"),
        ({"tier": "platinum"}, "unknown_tier"),
    ],
)
def test_unsafe_or_unknown_settings_are_refused(changes: dict[str, object], code: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate(_spec(**changes))
    assert refused.value.code == code
