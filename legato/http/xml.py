"""XML in both directions.

Rendering is generic and deterministic, one element per key in the order of the JSON body:

- an object: its keys as child elements (a key that is no XML name becomes
  ``<entry key="…">``); an empty object carries ``type="object"``;
- a list: ``type="array"`` and one ``<item>`` child per element;
- ``null``: an empty element with ``nil="true"``;
- numbers and booleans: their JSON text with ``type="integer"``, ``"number"`` or ``"boolean"``;
- a string: its text, no attribute (characters XML 1.0 cannot carry become U+FFFD).

Everything clients send as XML is parsed with defusedxml (:func:`parse_xml`): no DTDs, no
entity expansion, no external references, and at most ``MAX_DEPTH`` levels of elements.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from legato.model.errors import InvalidInput

__all__ = ["MAX_DEPTH", "XML_DECLARATION", "from_xml", "parse_xml", "to_xml"]

#: How deep a client's document may nest; readers of the tree recurse.
MAX_DEPTH = 100
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def _child(parent: ET.Element, key: str) -> ET.Element:
    if _NAME.match(key) and not key.lower().startswith("xml"):
        return ET.SubElement(parent, key)
    return ET.SubElement(parent, "entry", {"key": _text(key)})


def _fill(element: ET.Element, value: Any) -> None:
    if value is None:
        element.set("nil", "true")
    elif isinstance(value, bool):
        element.set("type", "boolean")
        element.text = "true" if value else "false"
    elif isinstance(value, int):
        element.set("type", "integer")
        element.text = str(value)
    elif isinstance(value, float):
        element.set("type", "number")
        element.text = repr(value)
    elif isinstance(value, str):
        element.text = _text(value)
    elif isinstance(value, dict):
        if not value:
            element.set("type", "object")
        for key, item in value.items():
            _fill(_child(element, str(key)), item)
    elif isinstance(value, list | tuple):
        element.set("type", "array")
        for item in value:
            _fill(ET.SubElement(element, "item"), item)
    else:
        element.text = _text(str(value))


def to_xml(root: str, value: Any) -> bytes:
    """``value`` as an XML document whose root element is ``root``."""
    element = ET.Element(root)
    _fill(element, value)
    # A raw CR in text would read back as LF (XML normalises line ends): write it as a
    # reference. Attributes have theirs escaped already, names cannot hold one.
    text = ET.tostring(element, encoding="unicode").replace("\r", "&#13;")
    return (XML_DECLARATION + text).encode()


def parse_xml(data: bytes | str) -> ET.Element:
    """The root element of a client's XML document; a malformed document, one with a DTD,
    entities or external references, or one nested deeper than ``MAX_DEPTH`` elements is
    refused with a 422 ``invalid_xml`` problem."""
    try:
        root: ET.Element = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException, ValueError, LookupError) as exc:
        # LookupError: a declaration naming an encoding Python does not know
        raise _invalid(str(exc) or type(exc).__name__) from None
    if _depth(root) > MAX_DEPTH:
        raise _invalid(f"elements are nested deeper than {MAX_DEPTH} levels")
    return root


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput(
        f"the body is not acceptable XML: {reason}",
        code="invalid_xml",
        errors=[{"path": "body", "message": reason}],
    )


def _depth(root: ET.Element) -> int:
    """How deep the elements nest (the root alone: 1), without recursion."""
    deepest, level = 0, [root]
    while level:
        deepest += 1
        level = [child for element in level for child in element]
    return deepest


def from_xml(element: ET.Element) -> Any:
    """The inverse of :func:`to_xml` for the element's content (the root name aside)."""
    if element.get("nil") == "true":
        return None
    kind = element.get("type")
    text = element.text or ""
    if kind == "boolean":
        return text == "true"
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    if kind == "array":
        return [from_xml(child) for child in element]
    if kind == "object" or len(element):
        return {
            (child.get("key", "entry") if child.tag == "entry" else child.tag): from_xml(child)
            for child in element
        }
    return text
