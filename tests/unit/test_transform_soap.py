"""REST to SOAP 1.1/1.2 and back: functions.routes.logic.transform.soap."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest

from functions.routes.logic.transform.soap import (
    SOAP11,
    SOAP12,
    XSI,
    soap_request,
    soap_response,
    validate_soap_config,
)
from functions.routes.logic.transform.templates import TemplateError
from gateway_core.errors import BadRequest, UpstreamError

NS = "urn:bank:accounts"
CONFIG_11: dict[str, Any] = {
    "version": "1.1",
    "namespace": NS,
    "operation": "GetBalance",
    "action": "urn:bank:GetBalance",
}
CONFIG_12: dict[str, Any] = {
    "version": "1.2",
    "namespace": NS,
    "operation": "GetBalance",
    "action": "urn:bank:GetBalance",
}


def _operation(envelope: bytes, envelope_ns: str) -> ET.Element:
    """The operation element of a request envelope (parsing also proves it is well-formed)."""
    root = ET.fromstring(envelope)  # noqa: S314 - the gateway's own envelope
    assert root.tag == f"{{{envelope_ns}}}Envelope"
    body = root.find(f"{{{envelope_ns}}}Body")
    assert body is not None
    (operation,) = list(body)
    return operation


def _response(envelope_ns: str, inner: str, prefix: str = "soap") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><{prefix}:Envelope xmlns:{prefix}="{envelope_ns}" xmlns:xsi="{XSI}">'
        f"<{prefix}:Header/><{prefix}:Body>{inner}</{prefix}:Body></{prefix}:Envelope>"
    ).encode()


def _fault11(code: str, reason: str) -> bytes:
    return _response(
        SOAP11,
        f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{reason}</faultstring>"
        "<detail><trace>internal stack</trace></detail></soap:Fault>",
    )


def _fault12(code: str, reason: str) -> bytes:
    return _response(
        SOAP12,
        f"<env:Fault><env:Code><env:Value>{code}</env:Value></env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason></env:Fault>',
        prefix="env",
    )


# --- requests -------------------------------------------------------------------------------------


def test_given_soap_11_when_building_the_request_then_text_xml_and_a_quoted_soapaction() -> None:
    # When
    envelope, headers = soap_request({"accountId": "DE-1"}, CONFIG_11)
    # Then
    assert headers == {"content-type": "text/xml; charset=utf-8", "soapaction": '"urn:bank:GetBalance"'}
    assert envelope.startswith(b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="' + SOAP11.encode())
    operation = _operation(envelope, SOAP11)
    assert operation.tag == f"{{{NS}}}GetBalance"
    assert [(child.tag, child.text) for child in operation] == [(f"{{{NS}}}accountId", "DE-1")]


def test_given_soap_11_without_an_action_when_building_the_request_then_soapaction_is_empty_quotes() -> None:
    _, headers = soap_request({}, {"namespace": NS, "operation": "Ping"})
    assert headers == {"content-type": "text/xml; charset=utf-8", "soapaction": '""'}


def test_given_soap_12_when_building_the_request_then_soap_xml_with_an_action_parameter() -> None:
    envelope, headers = soap_request({"accountId": "DE-1"}, CONFIG_12)
    assert headers == {"content-type": 'application/soap+xml; charset=utf-8; action="urn:bank:GetBalance"'}
    assert "soapaction" not in headers
    operation = _operation(envelope, SOAP12)
    assert operation.findtext(f"{{{NS}}}accountId") == "DE-1"


def test_given_soap_12_without_an_action_when_building_the_request_then_no_action_parameter() -> None:
    _, headers = soap_request({}, {"version": "1.2", "namespace": NS, "operation": "Ping"})
    assert headers == {"content-type": "application/soap+xml; charset=utf-8"}


def test_given_text_with_markup_when_building_the_request_then_it_is_escaped() -> None:
    # Given values an attacker would use to inject elements
    payload = {"memo": "</m:memo><m:amount>1000000</m:amount>", "name": "Smith & Sons <Ltd>"}
    # When
    envelope, _ = soap_request(payload, CONFIG_11)
    # Then the text is escaped and reads back verbatim, no element was injected
    assert b"&lt;/m:memo&gt;&lt;m:amount&gt;1000000&lt;/m:amount&gt;" in envelope
    assert b"Smith &amp; Sons &lt;Ltd&gt;" in envelope
    operation = _operation(envelope, SOAP11)
    assert [child.tag for child in operation] == [f"{{{NS}}}memo", f"{{{NS}}}name"]
    assert operation.findtext(f"{{{NS}}}memo") == payload["memo"]
    assert operation.findtext(f"{{{NS}}}name") == payload["name"]


def test_given_typed_values_when_building_the_request_then_they_are_written_as_xml_text() -> None:
    payload = {
        "amount": Decimal("1234.50"),
        "big": Decimal("1E+3"),
        "count": 3,
        "active": True,
        "closed": False,
    }
    envelope, _ = soap_request(payload, CONFIG_11)
    operation = _operation(envelope, SOAP11)
    assert {child.tag.split("}")[1]: child.text for child in operation} == {
        "amount": "1234.50",
        "big": "1000",
        "count": "3",
        "active": "true",
        "closed": "false",
    }


def test_given_lists_nested_objects_and_none_when_building_the_request_then_repeated_elements_and_nil() -> None:
    payload = {
        "ids": ["a", "b", "c"],
        "payer": {"name": "Ada", "address": {"city": "London"}},
        "note": None,
        "none": [],
    }
    envelope, _ = soap_request(payload, CONFIG_11)
    assert b'<m:note xsi:nil="true"/>' in envelope
    assert b"<m:ids>a</m:ids><m:ids>b</m:ids><m:ids>c</m:ids>" in envelope
    assert b"<m:none" not in envelope  # an empty list has no element
    operation = _operation(envelope, SOAP11)
    assert [child.text for child in operation.findall(f"{{{NS}}}ids")] == ["a", "b", "c"]
    assert operation.findtext(f"{{{NS}}}payer/{{{NS}}}address/{{{NS}}}city") == "London"
    note = operation.find(f"{{{NS}}}note")
    assert note is not None
    assert note.get(f"{{{XSI}}}nil") == "true"


def test_given_no_payload_when_building_the_request_then_the_operation_is_empty() -> None:
    envelope, _ = soap_request(None, CONFIG_11)
    operation = _operation(envelope, SOAP11)
    assert operation.tag == f"{{{NS}}}GetBalance"
    assert list(operation) == []


def test_given_a_namespace_needing_escapes_when_building_the_request_then_the_attribute_is_quoted() -> None:
    envelope, _ = soap_request({}, {"namespace": 'urn:a&b"c', "operation": "Op"})
    assert _operation(envelope, SOAP11).tag == '{urn:a&b"c}Op'


@pytest.mark.parametrize("payload", [["a"], "text", 5, Decimal("1.0")])
def test_given_a_body_that_is_not_an_object_when_building_the_request_then_400_invalid_body(payload: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        soap_request(payload, CONFIG_11)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_body"


@pytest.mark.parametrize(
    "payload",
    [
        {"1abc": "x"},
        {"a b": "x"},
        {"a:b": "x"},
        {"<x>": "x"},
        {"": "x"},
        {"ok": {"bad name": "x"}},
        {"ok": [{"x/y": 1}]},
        {"a" * 129: "x"},
    ],
)
def test_given_a_key_that_is_no_xml_name_when_building_the_request_then_400_invalid_body(payload: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        soap_request(payload, CONFIG_11)
    assert caught.value.status == 400
    assert caught.value.code == "invalid_body"
    assert "cannot be an XML element name" in caught.value.detail


def test_given_a_body_nested_too_deeply_when_building_the_request_then_400_invalid_body() -> None:
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"n": deep}
    with pytest.raises(BadRequest) as caught:
        soap_request(deep, CONFIG_11)
    assert caught.value.code == "invalid_body"
    assert "nested too deeply" in caught.value.detail


@pytest.mark.parametrize("text", ["nul\x00", "bell\x07", "vt\x0b", "esc\x1b", "bad\ufffe"])
def test_given_characters_xml_cannot_hold_when_building_the_request_then_400_not_a_malformed_envelope(
    text: str,
) -> None:
    # Given a JSON string holding a character XML 1.0 forbids (legal in JSON as \u0007 etc.)
    # When / Then the caller gets a 400, rather than the upstream getting ill-formed XML
    with pytest.raises(BadRequest) as caught:
        soap_request({"memo": text}, CONFIG_11)
    assert caught.value.code == "invalid_body"


def test_given_a_short_number_with_a_huge_exponent_when_building_the_request_then_it_is_refused() -> None:
    # Given a 9-byte JSON number (`1E+200000`) from the caller
    # When / Then it is refused, instead of being expanded by format(..., "f") into 200 KB of
    # digits (1E+999999999 would allocate a gigabyte per request)
    with pytest.raises(BadRequest) as caught:
        soap_request({"amount": Decimal("1E+200000")}, CONFIG_11)
    assert caught.value.code == "invalid_body"


# --- config validation ----------------------------------------------------------------------------


def test_given_valid_configs_when_validating_then_they_pass() -> None:
    validate_soap_config(CONFIG_11)  # no TemplateError
    validate_soap_config(CONFIG_12)  # no TemplateError
    validate_soap_config({"namespace": "http://example.com/bank", "operation": "Get.Balance_v2-x"})  # no TemplateError


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({**CONFIG_11, "version": "2.0"}, "SOAP version is '1.1' or '1.2'"),
        ({**CONFIG_11, "version": 1.1}, "SOAP version is '1.1' or '1.2'"),
        ({**CONFIG_11, "namespace": "not a uri"}, "the SOAP namespace is a URI"),
        ({**CONFIG_11, "namespace": 'urn:x"y'}, "the SOAP namespace is a URI"),
        ({"operation": "GetBalance"}, "the SOAP namespace is a URI"),
        ({**CONFIG_11, "operation": "1Get"}, "the SOAP operation is an XML name"),
        ({**CONFIG_11, "operation": "m:Get"}, "the SOAP operation is an XML name"),
        ({**CONFIG_11, "operation": "Get><x"}, "the SOAP operation is an XML name"),
        ({"namespace": NS}, "the SOAP operation is an XML name"),
        ({**CONFIG_11, "action": 'urn:"x'}, "may not contain quotes or control characters"),
        ({**CONFIG_11, "action": "urn:x\r\nX-Evil: 1"}, "may not contain quotes or control characters"),
    ],
)
def test_given_a_bad_config_when_validating_then_template_error(config: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        validate_soap_config(config)


# --- responses ------------------------------------------------------------------------------------


def test_given_a_soap_11_answer_when_reading_then_nested_json_with_lists_and_exact_strings() -> None:
    # Given an answer with nesting, repeated elements, a nil and a default namespace
    body = _response(
        SOAP11,
        f'<GetBalanceResponse xmlns="{NS}"><accountId>DE-1</accountId>'
        "<balance><amount>1234.50</amount><currency>EUR</currency></balance>"
        "<entry><amount>-5.00</amount></entry><entry><amount>10.10</amount></entry><entry><amount>0.00</amount></entry>"
        '<overdraft xsi:nil="true"/><memo>  padded  </memo><empty/></GetBalanceResponse>',
    )
    # When
    value = soap_response(200, "text/xml", body, CONFIG_11)
    # Then
    assert value == {
        "accountId": "DE-1",
        "balance": {"amount": "1234.50", "currency": "EUR"},
        "entry": [{"amount": "-5.00"}, {"amount": "10.10"}, {"amount": "0.00"}],
        "overdraft": None,
        "memo": "padded",
        "empty": "",
    }


def test_given_a_soap_12_answer_when_reading_then_it_becomes_json() -> None:
    body = _response(
        SOAP12,
        '<b:GetBalanceResponse xmlns:b="urn:bank:accounts"><b:amount>99.90</b:amount>'
        "<b:ids>1</b:ids><b:ids>2</b:ids></b:GetBalanceResponse>",
        prefix="env",
    )
    assert soap_response(200, "application/soap+xml", body, CONFIG_12) == {"amount": "99.90", "ids": ["1", "2"]}


def test_given_an_answer_whose_first_element_is_a_leaf_when_reading_then_its_text() -> None:
    assert soap_response(200, "text/xml", _response(SOAP11, "<ok>yes</ok>"), CONFIG_11) == "yes"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_fault11("soap:Client", "Unknown account"), "soap:Client"),
        (_fault11("Client.Authentication", "Unknown account"), "Client.Authentication"),
        (_fault12("env:Sender", "Unknown account"), "env:Sender"),
    ],
)
@pytest.mark.parametrize("status", [500, 200])
def test_given_a_callers_fault_when_reading_then_400_upstream_rejected(body: bytes, code: str, status: int) -> None:
    with pytest.raises(BadRequest) as caught:
        soap_response(status, "text/xml", body, CONFIG_11)
    assert caught.value.status == 400
    assert caught.value.code == "upstream_rejected"
    assert caught.value.extensions == {"fault": {"code": code, "reason": "Unknown account"}}
    assert "Unknown account" in caught.value.detail
    assert "internal stack" not in str(caught.value.extensions)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_fault11("soap:Server", "Database down"), "soap:Server"),
        (_fault11("Server.Timeout", "Database down"), "Server.Timeout"),
        (_fault12("env:Receiver", "Database down"), "env:Receiver"),
        (_fault11("", "Database down"), ""),
        (_fault12("env:Sender", "Database down").replace(SOAP12.encode(), SOAP11.encode()), ""),
    ],
)
def test_given_a_services_fault_when_reading_then_502_upstream_fault(body: bytes, code: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        soap_response(500, "text/xml", body, CONFIG_11)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_fault"
    assert caught.value.extensions["fault"]["code"] == code
    assert caught.value.detail.startswith("The upstream failed:")


def test_given_a_long_fault_reason_when_reading_then_it_is_truncated() -> None:
    with pytest.raises(UpstreamError) as caught:
        soap_response(500, "text/xml", _fault11("soap:Server", "x" * 2000), CONFIG_11)
    assert len(caught.value.extensions["fault"]["reason"]) == 500
    assert len(caught.value.detail) == len("The upstream failed: ") + 300


def test_given_http_500_without_a_fault_when_reading_then_502_upstream_error() -> None:
    with pytest.raises(UpstreamError) as caught:
        soap_response(500, "text/xml", _response(SOAP11, "<r><v>1</v></r>"), CONFIG_11)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_error"
    assert "HTTP 500" in caught.value.detail


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b"not xml at all",
        b'{"json": true}',
        b"<unclosed>",
        b'<Envelope xmlns="urn:not-soap"><Body><r/></Body></Envelope>',
        b"<Envelope><Body><r/></Body></Envelope>",
        f'<soap:Envelope xmlns:soap="{SOAP11}"/>'.encode(),
        _response(SOAP11, ""),
        _response(SOAP11, "text only"),
        f'<soap:Body xmlns:soap="{SOAP11}"><r/></soap:Body>'.encode(),
    ],
)
def test_given_an_answer_that_is_no_soap_envelope_when_reading_then_502_upstream_unreadable(body: bytes) -> None:
    with pytest.raises(UpstreamError) as caught:
        soap_response(200, "text/xml", body, CONFIG_11)
    assert caught.value.status == 502
    assert caught.value.code == "upstream_unreadable"


def test_given_an_answer_nested_too_deeply_when_reading_then_502_upstream_unreadable() -> None:
    inner = "<n>" * 40 + "x" + "</n>" * 40
    with pytest.raises(UpstreamError) as caught:
        soap_response(200, "text/xml", _response(SOAP11, inner), CONFIG_11)
    assert caught.value.code == "upstream_unreadable"
    assert "nested too deeply" in caught.value.detail


def _billion_laughs(prolog: str = "") -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    return (
        f'<?xml version="1.0"?>{prolog}<!DOCTYPE lolz [{entities}]>'
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><r>&lol9;</r></soap:Body></soap:Envelope>'
    ).encode()


@pytest.mark.parametrize("doctype", ["<!DOCTYPE", "<!doctype"])
def test_given_a_billion_laughs_answer_when_reading_then_it_is_refused_quickly(doctype: str) -> None:
    # Given a DTD whose entities would expand to 10^9 "lol"s
    body = _billion_laughs().replace(b"<!DOCTYPE", doctype.encode())
    started = time.perf_counter()
    # When / Then it is refused before any expansion
    with pytest.raises(UpstreamError) as caught:
        soap_response(200, "text/xml", body, CONFIG_11)
    assert time.perf_counter() - started < 0.5
    assert caught.value.status == 502
    assert caught.value.code == "upstream_unreadable"


def test_given_a_doctype_with_an_internal_entity_when_reading_then_it_is_refused() -> None:
    body = (
        f'<!DOCTYPE e [<!ENTITY who "INJECTED">]><soap:Envelope xmlns:soap="{SOAP11}">'
        "<soap:Body><r><v>&who;</v></r></soap:Body></soap:Envelope>"
    ).encode()
    with pytest.raises(UpstreamError) as caught:
        soap_response(200, "text/xml", body, CONFIG_11)
    assert caught.value.code == "upstream_unreadable"


def _entity_answer(prolog: str) -> str:
    return (
        f'<?xml version="1.0"?>{prolog}<!DOCTYPE e [<!ENTITY who "INJECTED">]>'
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><r><v>&who;</v></r></soap:Body></soap:Envelope>'
    )


def test_given_a_doctype_after_a_long_comment_when_reading_then_it_is_still_refused() -> None:
    # Given a DOCTYPE pushed past the first 4096 bytes by a comment in the prolog
    body = _entity_answer("<!--" + "x" * 5000 + "-->").encode()
    # When / Then SOAP's "no DTD" still holds (today the entity is expanded into the value)
    with pytest.raises(UpstreamError) as caught:
        soap_response(200, "text/xml", body, CONFIG_11)
    assert caught.value.code == "upstream_unreadable"


def test_given_a_utf16_answer_with_a_doctype_when_reading_then_it_is_still_refused() -> None:
    # Given the same DTD in UTF-16, where the bytes never spell "<!DOCTYPE"
    body = _entity_answer("").replace('<?xml version="1.0"?>', "").encode("utf-16")
    with pytest.raises(UpstreamError) as caught:
        soap_response(200, "text/xml", body, CONFIG_11)
    assert caught.value.code == "upstream_unreadable"
