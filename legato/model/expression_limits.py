"""Bounds on what one expression may build: the size of each value it makes, 64-bit
integers, and the work one evaluation may do.

The sandbox keeps expressions from reaching what they must not; these bounds keep them from
making what no one can store: ``'a'.ljust(2**28)``, ``'%0268435456d'|format(1)`` or
``[[0] * 100000] * 100000``. Where a result's size can be known before it is made, it is
refused before; otherwise it is measured after each call and operator.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2.sandbox import safe_range
from jinja2.utils import generate_lorem_ipsum

__all__ = [
    "MAX_INT",
    "MAX_ITEMS",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MAX_TEXT",
    "LimitExceeded",
    "budget",
    "check_call",
    "check_filter",
    "check_format",
    "check_power",
    "check_printf",
    "check_repeat",
    "measure",
    "tick",
]

#: Characters one value may hold, all its strings together.
MAX_TEXT = 1_000_000
#: Items one value may hold, all levels together (a list of lists counts every item).
MAX_ITEMS = 100_000
MAX_INT = 2**63 - 1
#: Integers on the way to a result may be larger (``2**63 - 1``), up to this many bits.
_WORKING_BITS = 128
#: Calls, operators and lookups one evaluation may make, and the time it may take.
MAX_STEPS = 1_000_000
MAX_SECONDS = 5.0


class LimitExceeded(Exception):
    """An expression went past a bound; the message says which."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    started: float = field(default_factory=time.monotonic)


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "expression_budget", default=None
)


class budget:
    """The work budget of one evaluation."""

    def __enter__(self) -> None:
        self._token = _BUDGET.set(_Budget(deadline=time.monotonic() + MAX_SECONDS))

    def __exit__(self, *_exc: object) -> None:
        _BUDGET.reset(self._token)


def tick() -> None:
    spent = _BUDGET.get()
    if spent is None:
        return
    spent.steps += 1
    if spent.steps > MAX_STEPS:
        raise LimitExceeded(f"more than {MAX_STEPS} operations")
    if time.monotonic() > spent.deadline:
        raise LimitExceeded(f"took longer than {MAX_SECONDS:g} s")


def measure(value: Any, *, final: bool = False) -> tuple[int, int]:
    """(characters, items) of ``value``, refusing it as soon as it passes a bound; shared
    parts count each time they appear, as they would once written out. A ``final`` result's
    integers must fit in 64 bits."""
    chars = items = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes):
            chars += len(v)
            if chars > MAX_TEXT:
                raise LimitExceeded(f"result larger than {MAX_TEXT} characters")
        elif isinstance(v, bool) or v is None or isinstance(v, float):
            continue
        elif isinstance(v, int):
            if final:
                _check_int(v)
            elif v.bit_length() > _WORKING_BITS:
                raise LimitExceeded(f"integer {_short(v)} is too large")
        elif isinstance(v, Mapping | list | tuple | set | frozenset):
            items += len(v)
            if items > MAX_ITEMS:
                raise LimitExceeded(f"result holds more than {MAX_ITEMS} items")
            if isinstance(v, Mapping):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)
    return chars, items


def _check_int(value: int) -> None:
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise LimitExceeded(f"integer {_short(value)} does not fit in 64 bits")


def _short(value: int) -> str:
    return str(value) if value.bit_length() < 200 else f"of {value.bit_length()} bits"


def _check_sizes(args: Iterable[Any], most: int = MAX_TEXT) -> None:
    """Whole numbers that size a result (a width, a count): data is left alone."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > most:
            raise LimitExceeded(f"argument {_short(arg)} is larger than {most}")


def _check_text_size(size: int) -> None:
    if size > MAX_TEXT:
        raise LimitExceeded(f"result larger than {MAX_TEXT} characters")


def check_repeat(sequence: Any, count: Any) -> None:
    """``sequence * count`` before it is made."""
    if isinstance(sequence, str | list | tuple) and isinstance(count, int):
        chars, items = measure(sequence)
        times = max(count, 0)
        _check_text_size(chars * times)
        if items * times > MAX_ITEMS:
            raise LimitExceeded(f"result holds more than {MAX_ITEMS} items")


def check_power(base: Any, exponent: Any) -> None:
    """``base ** exponent`` on integers before it is computed."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        if (abs(base).bit_length() - 1) * exponent >= _WORKING_BITS:
            raise LimitExceeded(f"{_short(base)} ** {exponent} is too large")


_PRINTF = re.compile(
    r"%(?:\([^)]*\))?[-#0 +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?[a-zA-Z%]"
)
_FIELD = re.compile(r"\{([^{}]*)\}")
_DIGITS = re.compile(r"\d+")


def check_printf(template: str) -> None:
    """``template % args``: the widths and precisions it asks for, before it is formatted."""
    total = len(template)
    for spec in _PRINTF.finditer(template):
        for part in (spec["width"], spec["precision"]):
            if part == "*":
                raise LimitExceeded("'*' widths are not allowed in formats")
            if part:
                total += int(part)
    _check_text_size(total)


def check_format(template: str) -> None:
    """``template.format(…)``: its fields' widths, before it is formatted."""
    plain = template.replace("{{", "").replace("}}", "")
    total = len(template)
    for found in _FIELD.finditer(plain):
        _name, _, spec = found[1].partition(":")
        total += sum(int(d) for d in _DIGITS.findall(spec))
    if re.search(r"\{[^{}]*\{", plain):
        raise LimitExceeded("nested fields are not allowed in formats")
    _check_text_size(total)


_PADDING = frozenset({"ljust", "rjust", "center", "zfill"})
#: Filters whose whole-number arguments size what they make.
_SIZING_FILTERS = frozenset({"center", "indent", "wordwrap", "truncate", "batch", "slice"})


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """Refuse a call whose arguments would build too much; answers the arguments to call with
    (an iterable to join is read once, here)."""
    if obj is safe_range or obj is generate_lorem_ipsum:
        _check_sizes([*args, *kwargs.values()])
    if obj is generate_lorem_ipsum:
        words = _argument(args, kwargs, 0, "n", 5) * _argument(args, kwargs, 3, "max", 100)
        _check_text_size(words * 12)  # a word and its spacing, at most
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return args
    name = getattr(obj, "__name__", "")
    if name == "expandtabs":
        size = int(args[0] if args else kwargs.get("tabsize", 8))
        _check_text_size(len(owner) + owner.count("\t") * max(size, 0))
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        parts = list(args[0])
        measure(parts)
        _check_text_size(len(owner) * max(len(parts) - 1, 0))
        return (parts, *args[1:])
    elif name in _PADDING:
        _check_sizes([*args, *kwargs.values()])
    return args


def _argument(
    args: tuple[Any, ...], kwargs: Mapping[str, Any], at: int, name: str, default: int
) -> int:
    value = args[at] if len(args) > at else kwargs.get(name, default)
    return value if isinstance(value, int) else default


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _check_text_size(len(text) + found * max(len(new) - len(old), 0))


def check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, ...]:
    """The same for Jinja's filters (``args[0]`` is the filtered value)."""
    if name in _SIZING_FILTERS:
        most = MAX_ITEMS if name in ("batch", "slice") else MAX_TEXT
        _check_sizes([*args[1:], *kwargs.values()], most)
    value = args[0] if args else None
    if name == "format" and isinstance(value, str):
        check_printf(value)
    elif name == "replace" and len(args) >= 3:
        _check_replace(value, args[1], args[2], args[3] if len(args) > 3 else -1)
    elif name == "indent" and isinstance(value, str):
        width = args[1] if len(args) > 1 else kwargs.get("width", 4)
        each = len(width) if isinstance(width, str) else int(width)
        _check_text_size(len(value) + (value.count("\n") + 1) * max(each, 0))
    elif name == "wordwrap" and isinstance(value, str):
        wrap = args[4] if len(args) > 4 else kwargs.get("wrapstring") or "\n"
        _check_text_size(len(value) * (1 + len(str(wrap))))
    elif name == "join" and value is not None and not isinstance(value, str):
        parts = list(value)
        measure(parts)
        glue = args[1] if len(args) > 1 else kwargs.get("d", "")
        _check_text_size(len(str(glue)) * max(len(parts) - 1, 0))
        return (parts, *args[1:])
    return args
