"""Durations written the way people write them: ``500ms``, ``2s``, ``10m``, ``1h30m``, ``1d``.

A bare number (or a numeric string) means seconds. Units must go from largest to smallest and
appear at most once, so ``1h30m`` is valid and ``30m1h`` is not.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_UNITS: dict[str, float] = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_RANK = {unit: rank for rank, unit in enumerate(_UNITS)}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]+)\s*")
_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*")


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` as a number of seconds; raise ``ValueError`` when it is not a duration."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected a number of seconds or e.g. '10m'")
    if isinstance(value, int | float):
        seconds = float(value)
        if math.isnan(seconds) or math.isinf(seconds):
            raise ValueError(f"invalid duration {value!r}: must be a finite number")
        if seconds < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return seconds
    if not isinstance(value, str):
        raise ValueError(
            f"invalid duration {value!r}: expected a number of seconds or a string such as '10m'"
        )
    text = value.strip()
    if not text:
        raise ValueError("invalid duration '': empty")
    if text.startswith("-"):
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    if _NUMBER.fullmatch(text):
        return _finite(float(text), value)
    total = 0.0
    last_rank = -1
    pos = 0
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(
                f"invalid duration {value!r}: expected e.g. '500ms', '2s', '10m', '1h30m' or '1d'"
            )
        number, unit = match.group(1), match.group(2).lower()
        if unit not in _UNITS:
            known = ", ".join(_UNITS)
            raise ValueError(f"invalid duration {value!r}: unknown unit {unit!r} (use {known})")
        if _RANK[unit] <= last_rank:
            raise ValueError(
                f"invalid duration {value!r}: units must go from largest to smallest, once each"
            )
        last_rank = _RANK[unit]
        total += float(number) * _UNITS[unit]
        pos = match.end()
    return _finite(total, value)


def _finite(seconds: float, value: str) -> float:
    if math.isinf(seconds):  # e.g. 400 digits of days
        raise ValueError(f"invalid duration {value[:40]!r}: too long")
    return seconds


def format_duration(seconds: float) -> str:
    """Format seconds compactly (``90`` -> ``1m30s``, ``0.5`` -> ``500ms``); inverse of parsing."""
    if math.isnan(seconds) or math.isinf(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s" if seconds == 0 else f"{_trim(seconds * 1000)}ms"
    if millis < 1000:
        return f"{millis}ms"
    parts: list[str] = []
    whole, frac_ms = divmod(millis, 1000)
    for unit in ("d", "h", "m"):
        size = int(_UNITS[unit])
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    if whole or frac_ms:
        parts.append(f"{_trim(whole + frac_ms / 1000)}s")
    return "".join(parts)


def _trim(number: float) -> str:
    text = f"{number:.3f}".rstrip("0").rstrip(".")
    return text or "0"
