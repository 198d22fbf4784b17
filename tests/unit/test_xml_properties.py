"""Properties of the XML entry points: whatever a client sends, the answer is the parsed
document or the ``invalid_xml`` problem (Encoding.com: its own error document), DTDs and
entities never pass, and every JSON value the API renders as XML reads back as it was."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fuzzing import PROPERTIES
from hypothesis import given
from hypothesis import strategies as st

from legato.dialects.encoding_com.routes import QueryError, _parse_xml
from legato.http.xml import MAX_DEPTH, from_xml, parse_xml, to_xml
from legato.model.errors import InvalidInput

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def parse_or_problem(document: bytes | str) -> Any:
    """The root element, or the problem, checked to be the documented one."""
    try:
        return parse_xml(document)
    except InvalidInput as exc:
        assert (exc.status, exc.code) == (422, "invalid_xml")
        assert exc.errors and exc.errors[0]["path"] == "body"
        assert exc.errors[0]["message"]
        return exc


# -- documents ------------------------------------------------------------------------------

_names = st.sampled_from(["a", "query", "item", "x:y", "_n", "1bad", "a-b", "é", "xml"])
_texts = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["&amp;", "&lt;", "&#65;", "&#0;", "&#xD800;", "&e;", "]]>", "<![CDATA[<]]>"]),
)
_attrs = st.lists(st.tuples(_names, st.text(max_size=4)), max_size=2).map(
    lambda pairs: "".join(f' {k}="{v}"' for k, v in pairs)
)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(_names, _attrs, st.lists(children, max_size=3)).map(
        lambda t: f"<{t[0]}{t[1]}>{''.join(t[2])}</{t[0]}>"
    )


ELEMENTS = st.recursive(st.one_of(_texts, _names.map(lambda n: f"<{n}/>")), _element, max_leaves=12)
PROLOGS = st.sampled_from(
    [
        "",
        '<?xml version="1.0"?>',
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0" encoding="bogus"?>',
        '<?xml version="1.0" encoding="rot13"?>',
        '<?xml version="1.0" encoding="utf-16"?>',
        '<?xml version="1.1"?>',
        "<?xml-stylesheet href='x'?>",
        "<!-- a comment -->",
        "\ufeff",
    ]
)
DOCTYPES = st.sampled_from(
    [
        "<!DOCTYPE a>",
        '<!DOCTYPE a SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE a PUBLIC "-//x//y" "http://127.0.0.1/a.dtd">',
        '<!DOCTYPE a [<!ENTITY e "x">]>',
        '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
        '<!DOCTYPE a [<!ENTITY % p SYSTEM "http://127.0.0.1/p.dtd"> %p;]>',
        '<!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY e "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
        '<!DOCTYPE a [<!ELEMENT a ANY><!ATTLIST a x CDATA "d">]>',
        '<!DOCTYPE a [<!ENTITY e "<a>&e;</a>">]>',
    ]
)
DOCUMENTS = st.tuples(PROLOGS, ELEMENTS).map("".join)


@PROPERTIES
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_give_the_problem(data: bytes) -> None:
    parse_or_problem(data)


@PROPERTIES
@given(st.text(max_size=200))
def test_any_text_parses_or_gives_the_problem(text: str) -> None:
    parse_or_problem(text)


@PROPERTIES
@given(DOCUMENTS, st.sampled_from(["utf-8", "utf-16", "latin-1", "str"]))
def test_generated_documents_parse_or_give_the_problem(document: str, encoding: str) -> None:
    if encoding == "str":
        parse_or_problem(document)
    else:
        parse_or_problem(document.encode(encoding, errors="replace"))


@PROPERTIES
@given(PROLOGS, DOCTYPES, ELEMENTS, st.booleans())
def test_a_dtd_is_always_refused(prolog: str, doctype: str, body: str, as_bytes: bool) -> None:
    document = f"{prolog}{doctype}<a>{body}&e;</a>"
    refused = parse_or_problem(document.encode() if as_bytes else document)
    assert isinstance(refused, InvalidInput)


@PROPERTIES
@given(st.integers(1, 3 * MAX_DEPTH))
def test_nesting_is_bounded(depth: int) -> None:
    document = "<a>" * depth + "</a>" * depth
    parsed = parse_or_problem(document)
    assert isinstance(parsed, InvalidInput) == (depth > MAX_DEPTH)


@PROPERTIES
@given(st.one_of(DOCUMENTS, st.text(max_size=100)), st.booleans())
def test_an_encoding_com_query_parses_or_gives_its_error(document: str, wrap: bool) -> None:
    try:
        _parse_xml(f"<query>{document}</query>" if wrap else document)
    except QueryError as exc:
        assert str(exc).startswith("Malformed XML: ")


def test_an_encoding_com_query_nested_too_deeply_gives_its_error() -> None:
    depth = 10 * MAX_DEPTH
    with pytest.raises(QueryError, match=r"^Malformed XML: "):
        _parse_xml("<query>" + "<a>" * depth + "</a>" * depth + "</query>")


# -- round trip ------------------------------------------------------------------------------

# Characters that XML treats specially are drawn more often than chance would.
_json_texts = st.text(
    st.one_of(st.characters(), st.sampled_from("\r\n\t\x00\x85<&>]\"'")), max_size=12
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _json_texts,
)
JSON_VALUES = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(_json_texts, children, max_size=4),
    ),
    max_leaves=16,
)


def as_xml_carries(value: Any) -> Any:
    """``value`` with the characters XML 1.0 cannot carry replaced, as the renderer does."""
    if isinstance(value, str):
        return _NOT_XML.sub("\ufffd", value)
    if isinstance(value, list):
        return [as_xml_carries(item) for item in value]
    if isinstance(value, dict):
        return {as_xml_carries(key): as_xml_carries(item) for key, item in value.items()}
    return value


@PROPERTIES
@given(JSON_VALUES, st.sampled_from(["run", "steps", "value"]))
def test_what_is_rendered_as_xml_reads_back(value: Any, root: str) -> None:
    document = to_xml(root, value)
    element = parse_xml(document)
    assert element.tag == root
    assert from_xml(element) == as_xml_carries(value)


def test_a_carriage_return_reads_back() -> None:
    value = {"text": "a\r\nb\rc", "list": ["\r"], "a key\r": "x"}
    assert from_xml(parse_xml(to_xml("r", value))) == value
    assert b"a&#13;\nb&#13;c" in to_xml("r", value)


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0" encoding="rot13"?><a/>',
        b'<?xml version="1.0" encoding="hex"?><a/>',
        b'<?xml version="1.0" encoding="bogus"?><a/>',
    ],
)
def test_an_unknown_encoding_is_refused(document: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_xml(document)
    assert caught.value.code == "invalid_xml"
