"""Watching without polling: ETags from a run's change counter, ``If-None-Match``, the
``wait`` duration of long-polls, and Server-Sent Events with heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from legato.model.errors import InvalidInput

__all__ = [
    "MAX_WAIT_SECONDS",
    "SSE",
    "SSEvent",
    "etag",
    "etag_matches",
    "parse_etags",
    "parse_wait",
]

MAX_WAIT_SECONDS = 60.0
HEARTBEAT_SECONDS = 15.0
_WAIT = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s|m)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


def etag(run_id: int, change_seq: int, fmt: str) -> str:
    """A weak validator of a status resource: which run, which change of it, which format."""
    return f'W/"{run_id}.{change_seq}.{fmt}"'


def parse_etags(header: str | None) -> list[str]:
    """The entity tags of an ``If-None-Match`` header, without their weakness marks."""
    if not header:
        return []
    tags = []
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag:
            tags.append(tag)
    return tags


def etag_matches(tags: list[str], current: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``*`` or the same opaque tag."""
    opaque = current[2:] if current.startswith("W/") else current
    return any(tag == "*" or tag == opaque for tag in tags)


def parse_wait(value: str | None) -> float:
    """``30s``, ``500ms``, ``1m`` or plain seconds, capped at 60 s; 0 without a value."""
    if value is None or value == "":
        return 0.0
    found = _WAIT.match(value.strip().lower())
    if found is None:
        raise InvalidInput(
            f"wait={value!r} is not a duration; use for example wait=30s or wait=500ms",
            errors=[{"path": "wait", "message": "expected a duration such as 30s or 500ms"}],
        )
    seconds = float(found["number"]) * _UNITS[found["unit"]]
    return min(seconds, MAX_WAIT_SECONDS)


@dataclass(frozen=True)
class SSEvent:
    event: str
    data: Any
    id: int | None = None

    def encode(self) -> bytes:
        head = f"event: {self.event}\n"
        if self.id is not None:
            head += f"id: {self.id}\n"
        return head.encode() + b"data: " + orjson.dumps(self.data) + b"\n\n"


def SSE(
    events: AsyncIterator[SSEvent], *, heartbeat: float = HEARTBEAT_SECONDS
) -> StreamingResponse:
    """``text/event-stream`` of ``events``, with a comment line whenever ``heartbeat``
    seconds pass without one (proxies and clients then know the stream is alive)."""

    async def body() -> AsyncIterator[bytes]:
        pending: asyncio.Future[SSEvent] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({pending}, timeout=heartbeat)
                if not done:
                    yield b": keep-alive\n\n"
                    continue
                task, pending = pending, None
                try:
                    item = task.result()
                except StopAsyncIteration:
                    return
                yield item.encode()
        finally:
            if pending is not None:  # the client left while a change was awaited
                pending.cancel()
                await asyncio.wait({pending})
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
