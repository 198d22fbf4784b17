"""The XML rendering of status resources and the safe parser for what clients send."""

from __future__ import annotations

from typing import Any

import pytest

from legato.http.negotiation import render
from legato.http.xml import from_xml, parse_xml, to_xml
from legato.model.errors import InvalidInput


def test_rendering_is_exact() -> None:
    data = {
        "id": 7, "ratio": 0.5, "ok": True, "none": None, "name": "a < b & c",
        "list": [1, "x", [], {}], "empty": {}, "blank": "", "nested": {"k": {"v": False}},
    }  # fmt: skip
    assert to_xml("thing", data).decode() == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<thing><id type="integer">7</id><ratio type="number">0.5</ratio>'
        '<ok type="boolean">true</ok><none nil="true" /><name>a &lt; b &amp; c</name>'
        '<list type="array"><item type="integer">1</item><item>x</item>'
        '<item type="array" /><item type="object" /></list><empty type="object" /><blank />'
        '<nested><k><v type="boolean">false</v></k></nested></thing>'
    )
    assert from_xml(parse_xml(to_xml("thing", data))) == data


@pytest.mark.parametrize(
    "value",
    [
        {"a b": 1, "1st": "x", "xmlish": None, "ünï": [1.5], "entry": "plain", "ok.k-e_y": 2},
        [],
        [None, [None]],
        "text",
        -3,
        {"SUCCEEDED": 2, "FAILED": 0},
    ],
)
def test_what_is_rendered_reads_back(value: Any) -> None:
    assert from_xml(parse_xml(to_xml("root", value))) == value


def test_keys_that_are_no_xml_names_become_entries() -> None:
    assert (
        to_xml("r", {"a b": 1})
        .decode()
        .endswith('<r><entry key="a b" type="integer">1</entry></r>')
    )


def test_characters_xml_cannot_carry_are_replaced() -> None:
    text = to_xml("r", {"s": "bell\x07 ok\ttab"})
    assert from_xml(parse_xml(text)) == {"s": "bell\ufffd ok\ttab"}


def test_render_picks_the_format() -> None:
    assert render({"a": [1]}, "json", "r") == b'{"a":[1]}'
    assert render({"a": [1]}, "txt", "r", "word") == b"word"
    assert render({"a": 1}, "xml", "r").endswith(b'<r><a type="integer">1</a></r>')


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b'<!DOCTYPE r SYSTEM "http://example.com/r.dtd"><r/>',
        b"<r><unclosed></r>",
        b"",
        b"not xml",
    ],
)
def test_client_xml_with_dtds_entities_or_errors_is_refused(document: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_xml(document)
    assert caught.value.code == "invalid_xml"
    assert caught.value.status == 422


def test_client_xml_parses() -> None:
    root = parse_xml('<req><id type="integer">3</id><tags type="array"><item>a</item></tags></req>')
    assert root.tag == "req"
    assert from_xml(root) == {"id": 3, "tags": ["a"]}
