"""What a JSON value must be for the store to keep it as given: JSON types only, integers
that fit in 64 bits, text that is valid Unicode (no lone surrogates such as ``"\\ud800"``),
and a bounded nesting depth (deeper values cannot be written, nor read back without
recursion)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "json_problems"]

MAX_DEPTH = 64
_MIN_INT, _MAX_INT = -(2**63), 2**63 - 1


def json_problems(value: Any, path: str, max_depth: int = MAX_DEPTH) -> list[dict[str, str]]:
    """Problems (``path``, ``code``, ``message``) of ``value``; the first per kind suffices."""
    problems: list[dict[str, str]] = []
    seen: set[str] = set()

    def report(at: str, code: str, message: str) -> None:
        if code not in seen:
            seen.add(code)
            problems.append({"path": at, "code": code, "message": message})

    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, at, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                report(at, "invalid_text", "text holds a NUL character, which no store keeps")
            elif not _valid_text(item):
                report(at, "invalid_text", "text holds a lone surrogate, not valid Unicode")
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not _MIN_INT <= item <= _MAX_INT:
                report(at, "integer_out_of_range", "integers must fit in 64 bits")
        elif not isinstance(item, Mapping | list | tuple):
            report(at, "not_json", f"a {type(item).__name__} is no JSON value")
        else:
            if depth >= max_depth:
                report(at, "too_deep", f"nested deeper than {max_depth} levels")
                continue
            if isinstance(item, Mapping):
                for key, inner in item.items():
                    if isinstance(key, str) and not _valid_text(key):
                        report(at, "invalid_text", "a key holds a lone surrogate")
                    stack.append((inner, f"{at}.{key}", depth + 1))
            else:
                stack.extend((inner, f"{at}[{i}]", depth + 1) for i, inner in enumerate(item))
    return problems


def _valid_text(text: str) -> bool:
    """Valid Unicode that every store keeps (PostgreSQL's text holds no NUL)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
