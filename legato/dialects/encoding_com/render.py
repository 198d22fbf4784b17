"""Encoding.com's answers: an ordered tree of named values, written as XML or as JSON.

A :data:`Node` is a list of ``(name, value)`` pairs, a value being a string or another node;
a name may repeat (``<destination>`` twice). XML writes the pairs in order. JSON groups the
values of each name in the order the name first appears, a one-item group becoming the item
itself, and every leaf a string — as that API answers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any, Union

import orjson

__all__ = [
    "MEDIA_TYPES",
    "UNSET_DATE",
    "Node",
    "error_node",
    "render",
    "to_json",
    "to_xml",
    "vendor_date",
]

Node = list[tuple[str, Union[str, "Node"]]]

UNSET_DATE = "0000-00-00 00:00:00"


def vendor_date(iso: str | None) -> str:
    """``2026-11-26T01:02:03.123Z`` as ``2026-11-26 01:02:03``; unset as zeros."""
    if not iso:
        return UNSET_DATE
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def error_node(*messages: str) -> Node:
    return [("errors", [("error", message) for message in messages])]


def _fill(element: ET.Element, node: Node) -> None:
    for name, value in node:
        child = ET.SubElement(element, name)
        if isinstance(value, str):
            child.text = value
        else:
            _fill(child, value)


def to_xml(node: Node) -> bytes:
    root = ET.Element("response")
    _fill(root, node)
    ET.indent(root, space="    ")
    return (
        b'<?xml version="1.0"?>\n'
        + ET.tostring(root, encoding="unicode", short_empty_elements=False).encode()
        + b"\n"
    )


#: Names that are a list in JSON even with one item: the clients index ``media`` as a list.
ALWAYS_LISTS = frozenset({"media"})


def _plain(node: Node) -> dict[str, Any]:
    groups: dict[str, list[Any]] = {}
    for name, value in node:
        groups.setdefault(name, []).append(value if isinstance(value, str) else _plain(value))
    return {
        name: items if name in ALWAYS_LISTS or len(items) > 1 else items[0]
        for name, items in groups.items()
    }


def to_json(node: Node) -> bytes:
    return orjson.dumps({"response": _plain(node)})


#: The media type of an answer, by whether it is JSON.
MEDIA_TYPES = {True: "application/json", False: "application/xml"}


def render(node: Node, as_json: bool) -> tuple[bytes, str]:
    """The body and its media type."""
    return (to_json(node) if as_json else to_xml(node)), MEDIA_TYPES[as_json]
