"""Rendering for the Aspera Orchestrator dialect: Rails-style XML, its JSON twin, and the
Ruby-like text of hash values.

A document is a list of fields ``(name, value)``. A value is a string, an integer, a boolean,
``None``, a :class:`Time` (a datetime), a nested document (a list of fields), an
:class:`Array` of documents, or a :class:`Raw` JSON value (a value of the run, rendered as text
in XML and as itself in JSON). XML element names are written as given; JSON keys turn hyphens
into underscores and keep camelCase, as the vendor's API does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "XML_DECLARATION",
    "Array",
    "Attr",
    "Doc",
    "Raw",
    "Time",
    "json_key",
    "ruby_text",
    "to_json_data",
    "to_xml",
    "value_type",
]

XML_DECLARATION = '<?xml version="1.0"?>\n'
INDENT = "  "


@dataclass(frozen=True)
class Time:
    """A datetime, already formatted (``YYYY-MM-DDTHH:MM:SSZ``)."""

    text: str


@dataclass(frozen=True)
class Raw:
    """A value of a run (input, carried value, output), any JSON value."""

    value: Any


@dataclass(frozen=True)
class Array:
    """A list of documents (or plain values), each rendered as an element named ``item``."""

    item: str
    docs: list[Any]


@dataclass(frozen=True)
class Attr:
    """An element with attributes and text or children (documents outside the Rails style,
    such as ``work_order_status``)."""

    attrs: dict[str, str]
    content: str | Doc | None = None


Doc = list[tuple[str, Any]]


def json_key(name: str) -> str:
    return name.replace("-", "_")


def value_type(value: Any) -> str:
    """The vendor's type word of a value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, dict):
        return "hash"
    if isinstance(value, list | tuple):
        return "array"
    return "string"


def ruby_text(value: Any, *, top: bool = True) -> str:
    """A value as the vendor writes it in text: strings raw, a hash as Ruby prints it
    (``{'key' => {"k"=>"v", …}, …}`` at the top level, ``{"k"=>"v"}`` inside)."""
    if value is None:
        return "" if top else "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value if top else json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        if top:
            inner = ", ".join(f"'{k}' => {ruby_text(v, top=False)}" for k, v in value.items())
        else:
            inner = ", ".join(
                f"{json.dumps(str(k), ensure_ascii=False)}=>{ruby_text(v, top=False)}"
                for k, v in value.items()
            )
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(ruby_text(v, top=False) for v in value) + "]"
    return str(value)


# -- XML -------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(text: str) -> str:
    return _escape(text).replace('"', "&quot;")


def _clean(text: str) -> str:
    return "".join(
        c
        if c in "\t\n\r"
        or 0x20 <= ord(c) <= 0xD7FF
        or 0xE000 <= ord(c) <= 0xFFFD
        or ord(c) >= 0x10000
        else "\ufffd"
        for c in text
    )


def _text(text: str) -> str:
    """Element text; a value holding ``&``, ``<`` or ``>`` goes in CDATA, as the vendor's."""
    text = _clean(text)
    if any(c in text for c in "&<>"):
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    return text


def _element(name: str, value: Any, depth: int, out: list[str]) -> None:
    pad = INDENT * depth
    if isinstance(value, Attr):
        attrs = "".join(f' {k}="{_attr(v)}"' for k, v in value.attrs.items())
        if value.content is None or value.content == "" or value.content == []:
            out.append(f"{pad}<{name}{attrs}/>")
        elif isinstance(value.content, str):
            out.append(f"{pad}<{name}{attrs}>{_text(value.content)}</{name}>")
        else:
            out.append(f"{pad}<{name}{attrs}>")
            for key, child in value.content:
                _element(key, child, depth + 1, out)
            out.append(f"{pad}</{name}>")
        return
    if isinstance(value, Raw):
        value = value.value
        if isinstance(value, dict | list | tuple):
            value = ruby_text(value)
    if value is None:
        out.append(f'{pad}<{name} nil="true"/>')
    elif isinstance(value, bool):
        out.append(f'{pad}<{name} type="boolean">{"true" if value else "false"}</{name}>')
    elif isinstance(value, int):
        out.append(f'{pad}<{name} type="integer">{value}</{name}>')
    elif isinstance(value, float):
        out.append(f'{pad}<{name} type="float">{json.dumps(value)}</{name}>')
    elif isinstance(value, Time):
        out.append(f'{pad}<{name} type="datetime">{value.text}</{name}>')
    elif isinstance(value, Array):
        if not value.docs:
            out.append(f'{pad}<{name} type="array"/>')
            return
        out.append(f'{pad}<{name} type="array">')
        for doc in value.docs:
            _element(value.item, doc, depth + 1, out)
        out.append(f"{pad}</{name}>")
    elif isinstance(value, list):
        out.append(f"{pad}<{name}>")
        for key, child in value:
            _element(key, child, depth + 1, out)
        out.append(f"{pad}</{name}>")
    else:
        out.append(f"{pad}<{name}>{_text(str(value))}</{name}>")


def to_xml(root: str, value: Any) -> str:
    out: list[str] = []
    _element(root, value, 0, out)
    return XML_DECLARATION + "\n".join(out) + "\n"


# -- JSON ------------------------------------------------------------------------------------


def to_json_data(value: Any) -> Any:
    if isinstance(value, Attr):
        data: dict[str, Any] = dict(value.attrs)
        if isinstance(value.content, list):
            data.update(to_json_data(value.content))
        elif value.content is not None:
            data["value"] = value.content
        return data
    if isinstance(value, Raw):
        return value.value
    if isinstance(value, Time):
        return value.text
    if isinstance(value, Array):
        return [to_json_data(doc) for doc in value.docs]
    if isinstance(value, list):
        return {json_key(k): to_json_data(v) for k, v in value}
    return value
