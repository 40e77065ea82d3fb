"""Accept negotiation, body parsing and JSON/XML/CSV rendering: functions.routes.logic.transform.negotiation."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

import pytest

from functions.routes.logic.transform.negotiation import CSV, JSON, RENDERED, XML, negotiate, parse_body, render
from gateway_core.errors import BadRequest


def _parse(document: bytes) -> ET.Element:
    """Our own rendered output, parsed to prove it is well-formed."""
    return ET.fromstring(document)  # noqa: S314 - the gateway's own output, not untrusted input


# --- negotiate ------------------------------------------------------------------------------------


def test_given_the_rendered_types_then_ties_go_to_json_then_xml_then_csv() -> None:
    assert RENDERED == ("application/json", "application/xml", "text/csv")


@pytest.mark.parametrize("accept", [None, "", "   "])
def test_given_no_accept_when_negotiating_then_json(accept: str | None) -> None:
    assert negotiate(accept) == JSON


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", JSON),
        ("application/xml", XML),
        ("text/csv", CSV),
        ("TEXT/CSV", CSV),
        ("text/csv; charset=utf-8", CSV),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/*", CSV),
        # q-values
        ("application/json;q=0.5, text/csv", CSV),
        ("application/json;q=0.5, application/xml;q=0.9, text/csv;q=0.8", XML),
        ("text/csv;q=0.8, application/json;q=0.7", CSV),
        ("text/csv; q=1.0 , application/json ; q=0.999", CSV),
        # ties go to JSON, then XML
        ("text/csv, application/xml", XML),
        ("text/csv;q=0.5, application/xml;q=0.5, application/json;q=0.5", JSON),
        ("text/csv;q=0.5, application/xml;q=0.5", XML),
        # specificity: the most specific range gives the q
        ("*/*;q=0.1, text/csv", CSV),
        ("application/*;q=0.2, application/xml;q=0.3", XML),
        ("*/*, application/json;q=0", XML),
        ("*/*;q=0.5, application/*;q=0", CSV),
        ("application/json;q=0, application/*", XML),
        # unknown ranges are ignored next to known ones
        ("image/png, application/xml;q=0.1", XML),
        # q out of range is clamped
        ("application/json;q=0.5, text/csv;q=7", CSV),
        ("text/csv;q=-1, application/xml;q=0.01", XML),
        # malformed parts are ignored; nothing parseable means the default
        ("garbage", JSON),
        ("/, ;q=1", JSON),
    ],
)
def test_given_an_accept_header_when_negotiating_then_the_best_type_wins(accept: str, expected: str) -> None:
    assert negotiate(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "text/*;q=0.1, text/csv;q=0",  # text/* would allow csv, but text/csv;q=0 is more specific
        "image/png",
        "text/html, application/pdf",
        "*/*;q=0",
        "application/json;q=0, application/xml;q=0, text/csv;q=0",
        "application/json;q=abc",
        "application/*;q=0, text/csv;q=0",
    ],
)
def test_given_an_accept_header_allowing_none_of_our_types_when_negotiating_then_none(accept: str) -> None:
    assert negotiate(accept) is None


# --- parse_body -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json", None, ""]
)
def test_given_a_json_body_when_parsing_then_exact_numbers(content_type: str | None) -> None:
    value = parse_body(content_type, b'{"amount":1234.50,"n":1}')
    assert value == {"amount": Decimal("1234.50"), "n": 1}
    assert str(value["amount"]) == "1234.50"


def test_given_invalid_json_when_parsing_then_400_invalid_json() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body("application/json", b"{not json")
    assert caught.value.status == 400
    assert caught.value.code == "invalid_json"


def test_given_a_form_when_parsing_then_an_object_of_first_values() -> None:
    body = b"amount=12.50&ccy=EUR&ccy=USD&memo=a+b%26c&empty="
    assert parse_body("application/x-www-form-urlencoded; charset=utf-8", body) == {
        "amount": "12.50",
        "ccy": "EUR",
        "memo": "a b&c",
        "empty": "",
    }


def test_given_a_form_with_invalid_utf8_when_parsing_then_replacement_characters() -> None:
    assert parse_body("application/x-www-form-urlencoded", b"name=\xff") == {"name": "\ufffd"}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/csv; charset=utf-8", "application/xml", "application/soap+xml"]
)
def test_given_text_or_xml_when_parsing_then_a_string(content_type: str) -> None:
    assert parse_body(content_type, "héllo <x/>".encode()) == "héllo <x/>"


def test_given_text_with_invalid_utf8_when_parsing_then_replacement_characters() -> None:
    assert parse_body("text/plain", b"ok\xff") == "ok\ufffd"


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "image/png", "application/pdf", "multipart/form-data; boundary=x"]
)
def test_given_a_binary_body_when_parsing_then_none(content_type: str) -> None:
    assert parse_body(content_type, b"\x89PNG\r\n\x1a\n\x00") is None


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_given_an_empty_body_when_parsing_then_none(content_type: str | None) -> None:
    assert parse_body(content_type, b"") is None


# --- render: JSON ---------------------------------------------------------------------------------


def test_given_json_when_rendering_then_compact_exact_json() -> None:
    assert render({"amount": Decimal("1234.50"), "ok": True}, JSON) == b'{"amount":1234.50,"ok":true}'


def test_given_an_unknown_media_type_when_rendering_then_json() -> None:
    assert render([1], "application/unknown") == b"[1]"


# --- render: XML ----------------------------------------------------------------------------------


def test_given_a_document_when_rendering_xml_then_elements_items_and_empty_elements() -> None:
    # Given
    value = {
        "account": {"id": "acc-1", "amount": Decimal("1234.50"), "big": Decimal("1E+3")},
        "tags": ["vip", "new"],
        "active": True,
        "overdraft": None,
        "memo": "Smith & Sons <Ltd>",
    }
    # When
    out = render(value, XML)
    # Then
    assert out == (
        b'<?xml version="1.0" encoding="utf-8"?><response>'
        b"<account><id>acc-1</id><amount>1234.50</amount><big>1000</big></account>"
        b"<tags><item>vip</item><item>new</item></tags>"
        b"<active>true</active><overdraft/><memo>Smith &amp; Sons &lt;Ltd&gt;</memo>"
        b"</response>"
    )
    root = _parse(out)
    assert root.findtext("memo") == "Smith & Sons <Ltd>"


@pytest.mark.parametrize(
    "name", ["1st", "has space", "a:b", "xmlns", "XMLthing", "", "<evil>", 'q"uote', "€uro", "-dash", ".dot"]
)
def test_given_a_key_that_is_no_xml_name_when_rendering_xml_then_a_field_element_carries_it(name: str) -> None:
    out = render({name: "v", "nil": {name: None}}, XML)
    root = _parse(out)  # still well-formed
    (field, nil) = list(root)
    assert field.tag == "field"
    assert field.get("name") == name
    assert field.text == "v"
    (inner,) = list(nil)
    assert inner.tag == "field"
    assert inner.get("name") == name
    assert inner.text is None


@pytest.mark.parametrize("name", ["a", "_x", "A.b-c_9", "camelCase"])
def test_given_a_valid_xml_name_when_rendering_xml_then_it_is_the_element_name(name: str) -> None:
    root = _parse(render({name: 1}, XML))
    assert [child.tag for child in root] == [name]


def test_given_a_top_level_list_or_scalar_when_rendering_xml_then_items_under_response() -> None:
    assert (
        render([1, {"a": None}], XML)
        == b'<?xml version="1.0" encoding="utf-8"?><response><item>1</item><item><a/></item></response>'
    )
    assert render("text", XML) == b'<?xml version="1.0" encoding="utf-8"?><response>text</response>'
    assert render(None, XML) == b'<?xml version="1.0" encoding="utf-8"?><response/>'


@pytest.mark.parametrize("text", ["nul\x00", "bell\x07", "esc\x1b"])
def test_given_characters_xml_cannot_hold_when_rendering_xml_then_the_document_is_still_well_formed(text: str) -> None:
    # Given a JSON string with a character XML 1.0 forbids (legal JSON: \u0000, \u0007, ...)
    # When / Then the XML answer still parses (dropped or replaced, never written raw)
    _parse(render({"memo": text}, XML))


# --- render: CSV ----------------------------------------------------------------------------------


def _csv(value: Any) -> list[list[str]]:
    text = render(value, CSV).decode()
    return list(csv.reader(io.StringIO(text)))


def test_given_a_list_of_records_when_rendering_csv_then_a_header_and_one_row_each() -> None:
    value = [{"id": "a", "amount": Decimal("1.50")}, {"id": "b", "extra": "x"}]
    assert render(value, CSV) == b"id,amount,extra\r\na,1.50,\r\nb,,x\r\n"


def test_given_an_items_wrapper_when_rendering_csv_then_the_list_inside_is_the_rows() -> None:
    assert _csv({"items": [{"id": 1}, {"id": 2}]}) == [["id"], ["1"], ["2"]]


def test_given_an_object_with_more_members_when_rendering_csv_then_it_is_one_record() -> None:
    assert _csv({"items": [{"id": 1}], "next": "cursor"}) == [["items.0.id", "next"], ["1", "cursor"]]


def test_given_a_one_member_object_that_is_no_list_when_rendering_csv_then_it_is_one_record() -> None:
    assert _csv({"total": Decimal("10.00")}) == [["total"], ["10.00"]]


def test_given_nested_records_when_rendering_csv_then_columns_are_flattened_with_dots() -> None:
    value = [
        {
            "id": "p-1",
            "amount": {"value": Decimal("1234.50"), "currency": "EUR"},
            "tags": ["vip", "new"],
            "lines": [{"sku": "A"}, {"sku": "B"}],
            "nil": None,
            "ok": False,
            "big": Decimal("1E+2"),
        }
    ]
    assert _csv(value) == [
        ["id", "amount.value", "amount.currency", "tags", "lines.0.sku", "lines.1.sku", "nil", "ok", "big"],
        ["p-1", "1234.50", "EUR", "vip;new", "A", "B", "", "false", "100"],
    ]


def test_given_a_list_of_scalars_when_rendering_csv_then_one_value_column() -> None:
    assert _csv(["a", Decimal("2.50"), None]) == [["value"], ["a"], ["2.50"], [""]]


def test_given_cells_with_commas_quotes_and_newlines_when_rendering_csv_then_they_are_quoted() -> None:
    out = render([{"memo": 'a,b "c"\nd'}], CSV)
    assert out == b'memo\r\n"a,b ""c""\nd"\r\n'
    assert _csv([{"memo": 'a,b "c"\nd'}]) == [["memo"], ['a,b "c"\nd']]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1+1", "'+1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-cmd", "'-cmd"),
        ("-", "'-"),
        ("-5.00", "-5.00"),
        ("-12", "-12"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_given_a_cell_a_spreadsheet_would_run_when_rendering_csv_then_it_is_quoted_with_an_apostrophe(
    cell: str, expected: str
) -> None:
    assert _csv([{"c": cell}]) == [["c"], [expected]]


def test_given_negative_decimal_numbers_when_rendering_csv_then_they_are_not_prefixed() -> None:
    assert _csv([{"amount": Decimal("-5.00")}, {"amount": -3}]) == [["amount"], ["-5.00"], ["-3"]]


@pytest.mark.parametrize("cell", ["-1+cmd|' /C calc'!A0", '-2+3+HYPERLINK("http://evil")', "-1-1"])
def test_given_a_formula_that_starts_like_a_negative_number_when_rendering_csv_then_it_is_still_guarded(
    cell: str,
) -> None:
    # Given a formula whose first characters are "-<digit>": spreadsheets still run it
    # When / Then only cells that are a whole negative number escape the guard
    assert _csv([{"c": cell}]) == [["c"], ["'" + cell]]


def test_given_a_column_name_a_spreadsheet_would_run_when_rendering_csv_then_the_header_is_guarded() -> None:
    # Given record keys (from the upstream answer) that are formulas
    # When / Then the header row gets the same guard as the cells
    assert _csv([{'=HYPERLINK("http://evil")': "1"}]) == [['\'=HYPERLINK("http://evil")'], ["1"]]
