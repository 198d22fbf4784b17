"""Integer ids and numbers as clients spell them in paths, queries, headers and forms.

``str.isdigit`` holds for ``'³'`` and ``int`` reads ``'١٢'``, ``' 12 '`` and ``'1_2'``: an id is
parsed here alone, from ASCII digits only, and only when it fits a 64-bit column.
"""

from __future__ import annotations

import re

__all__ = ["MAX_ID", "parse_id"]

MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(text: str | None, *, low: int = 0, high: int = MAX_ID) -> int | None:
    """The number ``text`` spells in ASCII digits (no sign, no spaces) when it lies in
    [``low``, ``high``]; None for anything else."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if low <= number <= high else None
