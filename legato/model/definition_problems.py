"""What is wrong with a workflow definition: each problem with its path, source line, message
and code, and the error that carries them all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DefinitionError", "FieldPath", "Issue", "Problem", "format_path", "short_repr"]

#: Where in a definition: keys and list indexes, such as ``("steps", 1, "needs", 0)``.
FieldPath = tuple[str | int, ...]
#: A problem before its line is known: path, message, code.
Issue = tuple[FieldPath, str, str]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (path and 1-based line) and what."""

    path: str
    line: int | None
    message: str
    code: str

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        where += [self.path] if self.path else []
        return ": ".join([*where, self.message])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DefinitionError(ValueError):
    """The definition is invalid; ``problems`` lists every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: FieldPath) -> str:
    """``("steps", 1, "needs", 0)`` -> ``steps[1].needs[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
