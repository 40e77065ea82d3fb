"""REST to SOAP: a JSON object becomes the configured operation in a SOAP 1.1 or 1.2 envelope
(document/literal, child elements in the operation's namespace); the answer's first Body element
comes back as JSON (elements with children become objects, repeated names lists, leaves text, so
amounts stay exact strings), and a Fault becomes a problem: the caller's fault (1.1 `Client`,
1.2 `Sender`) a 400, the service's a 502.

Upstream XML is parsed by the standard library's expat into an ElementTree, with the DTD refused
in the parser itself (SOAP forbids DTDs): no entity is ever declared, so none is expanded or
fetched, whatever the encoding or wherever the DOCTYPE sits. (defusedxml does the same; these few
lines spare a dependency.)
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from functions.routes.logic.transform.jsonio import MAX_EXPONENT
from functions.routes.logic.transform.templates import TemplateError
from gateway_core.errors import BadRequest, UpstreamError

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,127}$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+$")
MAX_DEPTH = 32


def validate_soap_config(config: dict[str, Any]) -> None:
    if config.get("version", "1.1") not in ("1.1", "1.2"):
        raise TemplateError("SOAP version is '1.1' or '1.2'")
    if not _URI.fullmatch(str(config.get("namespace", ""))):
        raise TemplateError("the SOAP namespace is a URI, e.g. urn:bank:accounts")
    if not _NCNAME.fullmatch(str(config.get("operation", ""))):
        raise TemplateError("the SOAP operation is an XML name, e.g. GetBalance")
    action = config.get("action")
    if action is not None and ('"' in action or any(ord(c) < 32 for c in action)):
        raise TemplateError("the SOAP action may not contain quotes or control characters")


# The characters XML 1.0 may hold (section 2.2); anything else makes the document malformed.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text_ok(text: str) -> bool:
    return _NOT_XML.search(text) is None


def xml_text(text: str) -> str:
    """`text` with the characters XML cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


class _Refused(Exception):
    pass


def _refuse(*_: Any) -> int:
    raise _Refused


def parse_xml(body: bytes) -> ET.Element:
    """An ElementTree of `body`; ValueError for anything malformed or carrying a DTD."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def name(raw: str) -> str:
        return "{" + raw if "}" in raw else raw

    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = lambda tag, attrs: builder.start(name(tag), {name(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(name(tag))
    parser.CharacterDataHandler = builder.data
    parser.buffer_text = True
    try:
        parser.Parse(body, True)
        return builder.close()
    except _Refused as error:
        raise ValueError("a DTD or entity declaration") from error
    except (expat.ExpatError, AssertionError) as error:
        raise ValueError(str(error)) from error


def _text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, Decimal):
        if not value.is_finite() or abs(value.adjusted()) > MAX_EXPONENT:
            raise BadRequest(f"The number {str(value)[:40]} is out of range.", code="invalid_body")
        return format(value, "f")
    return str(value)


def _elements(name: str, value: Any, depth: int, out: list[str]) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest("The body is nested too deeply for a SOAP request.", code="invalid_body")
    if not _NCNAME.fullmatch(name):
        raise BadRequest(f"'{name[:40]}' cannot be an XML element name.", code="invalid_body")
    if isinstance(value, list):
        for item in value:
            _elements(name, item, depth + 1, out)
        return
    if value is None:
        out.append(f'<m:{name} xsi:nil="true"/>')
        return
    out.append(f"<m:{name}>")
    if isinstance(value, dict):
        for key, item in value.items():
            _elements(str(key), item, depth + 1, out)
    else:
        text = _text(value)
        if not xml_text_ok(text):
            raise BadRequest(f"The value of '{name}' holds characters XML cannot carry.", code="invalid_body")
        out.append(escape(text))
    out.append(f"</m:{name}>")


def soap_request(payload: Any, config: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The envelope and the headers that go with it (Content-Type, and SOAPAction for 1.1)."""
    version = config.get("version", "1.1")
    envelope_ns = SOAP12 if version == "1.2" else SOAP11
    if payload is not None and not isinstance(payload, dict):
        raise BadRequest("A SOAP route takes a JSON object (the operation's parts).", code="invalid_body")
    parts: list[str] = []
    for key, value in (payload or {}).items():
        _elements(str(key), value, 1, parts)
    operation = config["operation"]
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{envelope_ns}" xmlns:xsi="{XSI}">'
        f"<soap:Body><m:{operation} xmlns:m={quoteattr(config['namespace'])}>"
        + "".join(parts)
        + f"</m:{operation}></soap:Body></soap:Envelope>"
    )
    action = config.get("action") or ""
    if version == "1.2":
        content_type = "application/soap+xml; charset=utf-8" + (f'; action="{action}"' if action else "")
        return xml.encode(), {"content-type": content_type}
    return xml.encode(), {"content-type": "text/xml; charset=utf-8", "soapaction": f'"{action}"'}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(element: ET.Element, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise UpstreamError("The SOAP answer is nested too deeply.", code="upstream_unreadable")
    if element.get(f"{{{XSI}}}nil") in ("true", "1"):
        return None
    children = list(element)
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        name, value = _local(child.tag), _value(child, depth + 1)
        if name in out:
            existing = out[name]
            out[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[name] = value
    return out


def _fault(fault: ET.Element, envelope_ns: str) -> Exception:
    if envelope_ns == SOAP12:
        code = (fault.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value") or "").strip()
        reason = (fault.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or "").strip()
        callers = ("Sender",)
    else:
        code = (fault.findtext("faultcode") or "").strip()
        reason = (fault.findtext("faultstring") or "").strip()
        callers = ("Client",)
    kind = code.rsplit(":", 1)[-1].split(".", 1)[0]
    details = {"fault": {"code": code[:200], "reason": reason[:500]}}
    if kind in callers:
        return BadRequest(
            f"The upstream refused the request: {reason[:300]}", code="upstream_rejected", extensions=details
        )
    return UpstreamError(f"The upstream failed: {reason[:300]}", code="upstream_fault", extensions=details)


def soap_response(status: int, content_type: str, body: bytes, config: dict[str, Any]) -> Any:
    """The operation's answer as JSON; a problem for a Fault, an HTTP error or unreadable XML."""
    if not body:
        raise UpstreamError(
            f"The SOAP upstream answered HTTP {status} without an envelope.", code="upstream_unreadable"
        )
    try:
        root = parse_xml(body)
    except ValueError as error:
        raise UpstreamError(
            f"The SOAP upstream's answer is not XML (HTTP {status}).", code="upstream_unreadable"
        ) from error
    envelope_ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if envelope_ns not in (SOAP11, SOAP12) or _local(root.tag) != "Envelope":
        raise UpstreamError("The SOAP upstream's answer is not a SOAP envelope.", code="upstream_unreadable")
    soap_body = root.find(f"{{{envelope_ns}}}Body")
    first = next(iter(soap_body), None) if soap_body is not None else None
    if first is None:
        raise UpstreamError("The SOAP upstream's answer has an empty Body.", code="upstream_unreadable")
    if first.tag == f"{{{envelope_ns}}}Fault":
        raise _fault(first, envelope_ns)
    if status >= 400:
        raise UpstreamError(f"The SOAP upstream answered HTTP {status}.", code="upstream_error")
    return _value(first)
