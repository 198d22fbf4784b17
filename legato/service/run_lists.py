"""Pages of runs (``GET /api/v1/runs``), read as of now and rendered once per run version.

A page is one statement (read through the driver, outside any transaction, so it sees every
commit made before it). A run's summary shows only columns of its row, and every change of
those moves the run's change counter, so the JSON of a summary is kept by run (id, UUID,
counter and the namespace's name, all of which it shows or depends on): a page re-renders only
the runs that changed since the process last rendered them, and never shows an older state
than the row it read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from legato.service.views import run_view
from legato.store import run_lists

__all__ = ["CACHED_SUMMARIES", "Page", "SummaryBodies"]

#: Run summaries a process keeps rendered (each well under a kB).
CACHED_SUMMARIES = 8192


class Page:
    """A page of runs as read: raw rows, and the token of the next page if there is one."""

    __slots__ = ("next_page_token", "rows")

    def __init__(self, rows: Sequence[Sequence[Any]], next_page_token: str | None) -> None:
        self.rows = rows
        self.next_page_token = next_page_token

    def views(self, namespace: str) -> list[dict[str, Any]]:
        return [run_view(run_lists.summary(row), namespace) for row in self.rows]

    def native(self, namespace: str) -> dict[str, Any]:
        """``{"runs": [...], "next_page_token": ...}``, the native API's answer."""
        return {"runs": self.views(namespace), "next_page_token": self.next_page_token}


class SummaryBodies:
    """The JSON of run summaries, by run version, least recently used out first."""

    def __init__(self, capacity: int = CACHED_SUMMARIES) -> None:
        self.capacity = capacity
        self._kept: OrderedDict[int, tuple[str, int, str, bytes]] = OrderedDict()

    def render(self, page: Page, namespace: str, encode: Callable[[Any], bytes]) -> bytes:
        """``page.native(namespace)`` as ``encode`` writes it, from the kept summaries where
        they are of the row's version. ``encode`` must write what ``orjson.dumps`` (with
        non-string keys) writes whenever that can write it; for what it cannot, the whole
        page goes through ``encode``."""
        parts = []
        for row in page.rows:
            body = self._body(row, namespace)
            if body is None:
                return encode(page.native(namespace))
            parts.append(body)
        return b"".join(
            (
                b'{"runs":[',
                b",".join(parts),
                b'],"next_page_token":',
                orjson.dumps(page.next_page_token),
                b"}",
            )
        )

    def _body(self, row: Sequence[Any], namespace: str) -> bytes | None:
        run_id, uuid, version = row[run_lists.ID], row[run_lists.UUID], row[run_lists.VERSION]
        kept = self._kept.get(run_id)
        if kept is not None and kept[:3] == (uuid, version, namespace):
            self._kept.move_to_end(run_id)
            return kept[3]
        view = run_view(run_lists.summary(row), namespace)
        try:
            body = orjson.dumps(view, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # e.g. a lone surrogate: the face's own encoder writes the page
            return None
        self._kept[run_id] = (uuid, version, namespace, body)
        self._kept.move_to_end(run_id)
        if len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
        return body
