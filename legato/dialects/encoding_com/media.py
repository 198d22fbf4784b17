"""A run as Encoding.com's media: its status words and one ``<format>`` per format block.

A media has exactly one format per ``<format>`` block ``AddMedia`` sent (the run's input
``formats``), in that order. Format *i* owns item *i* of every top-level ``foreach`` step
of the workflow (``encode[i]``, ``upload[i]``…). The workflow's other top-level steps are
shared: those before the first ``foreach`` step are the download (media status
``Downloading``), those after the last one the save (``Saving``), those in between the
processing. A workflow without a ``foreach`` step reads as download (its first step),
processing and save (its last step), every format following the media.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from legato import __version__
from legato.dialects.encoding_com.render import Node, vendor_date
from legato.model.ids import parse_id
from legato.model.reads import RunHead
from legato.model.states import RUN_TERMINAL, STEP_TERMINAL
from legato.service.principal import Principal
from legato.service.services import Services

__all__ = ["STATE_WORDS", "STEP_WORDS", "Layout", "media_node", "scalar"]

#: Legato run status -> media status (RUNNING is refined by the phase, see :func:`media_word`).
STATE_WORDS: dict[str, str] = {
    "QUEUED": "New",
    "RUNNING": "Processing",
    "CANCELING": "Processing",
    "SUCCEEDED": "Finished",
    "FAILED": "Error",
    "TIMED_OUT": "Error",
    "CANCELED": "Error",
}
#: Legato step status -> format (task) status, refined by the shared steps (see format_word).
STEP_WORDS: dict[str, str] = {
    "PENDING": "New",
    "READY": "New",
    "RUNNING": "Processing",
    "SUCCEEDED": "Finished",
    "FAILED": "Error",
    "TIMED_OUT": "Error",
    "CANCELED": "Error",
}
HELD = frozenset({"concurrency_limit", "queue_limit"})
STEP_DONE = frozenset({"SUCCEEDED", "SKIPPED"})
DESTINATION_FIELDS = ("s3_destination", "cf_destination")
OWN_FIELDS = frozenset(
    {"id", "status", "created", "started", "finished", "destination", "destination_status"}
    | {"task_status", *DESTINATION_FIELDS}
)


@dataclass(frozen=True)
class Layout:
    """The run's steps by role: shared before / between / after, and each format's own."""

    before: list[dict[str, Any]]
    between: list[dict[str, Any]]
    after: list[dict[str, Any]]
    formats: list[list[dict[str, Any]]]  # format i -> its item steps, in step order
    has_foreach: bool

    @classmethod
    def of(
        cls,
        top: list[dict[str, Any]],
        foreach_keys: set[str],
        items: dict[str, list[dict[str, Any]]],
        count: int,
    ) -> Layout:
        ranks = [s["rank"] for s in top if s["key"] in foreach_keys]
        formats: list[list[dict[str, Any]]] = [[] for _ in range(count)]
        for step in top:
            for item in items.get(step["key"], []):
                index = item_index(item["key"])
                if index is not None and index < count:
                    formats[index].append(item)
        shared = [s for s in top if s["key"] not in foreach_keys]
        if not ranks:
            first, last = (shared[:1], shared[1:][-1:]) if len(shared) > 1 else (shared, [])
            between = [s for s in shared if s not in first and s not in last]
            return cls(first, between, last, formats, False)
        low, high = min(ranks), max(ranks)
        return cls(
            [s for s in shared if s["rank"] < low],
            [s for s in shared if low < s["rank"] < high],
            [s for s in shared if s["rank"] > high],
            formats,
            True,
        )


def item_index(key: str) -> int | None:
    """``encode[2]`` -> 2; None for a key that is not a ``foreach`` item's."""
    if not key.endswith("]") or "[" not in key:
        return None
    index = key[key.rindex("[") + 1 : -1]
    return parse_id(index)


def _held(step: dict[str, Any]) -> bool:
    return (step.get("waiting_reason") or {}).get("reason") in HELD


def _open(steps: list[dict[str, Any]]) -> bool:
    return any(s["status"] not in STEP_TERMINAL for s in steps)


def media_word(run: dict[str, Any], layout: Layout) -> str:
    status = str(run["status"])
    if status == "QUEUED":
        return "Waiting for encoder" if any(_held(s) for s in run["steps"]) else "New"
    if status != "RUNNING":
        return STATE_WORDS[status]
    if _open(layout.before):
        return "Downloading"
    if _open(layout.between) or any(_open(own) for own in layout.formats):
        return "Processing"
    if _open(layout.after):
        return "Saving"
    return "Processing"


def format_word(run: dict[str, Any], layout: Layout, own: list[dict[str, Any]]) -> str:
    """A format's status: its own steps, then the shared save steps after them."""
    if not layout.has_foreach:
        word = media_word(run, layout)
        return "New" if word == "Downloading" else word
    if any(s["status"] in ("FAILED", "TIMED_OUT", "CANCELED") for s in own):
        return "Error"
    own_done = bool(own) and all(s["status"] in STEP_DONE for s in own)
    if run["status"] in RUN_TERMINAL:
        saved = own_done and not _open(layout.after)
        after_ok = all(s["status"] in STEP_DONE for s in layout.after)
        return "Finished" if saved and after_ok else "Error"
    if not own_done:
        if any(s["status"] == "RUNNING" for s in own):
            return "Processing"
        return "Waiting for encoder" if any(_held(s) for s in own) else "New"
    return "Saving" if _open(layout.after) else "Finished"


def _prev_word(events: list[dict[str, Any]], current: str) -> str:
    words = [STATE_WORDS.get(str(e["status"]), "") for e in events if e["step"] is None]
    for word in reversed([w for w in words if w]):
        if word != current:
            return word
    return current


def _seconds(value: float | None) -> str:
    return "" if value is None else str(max(0, math.ceil(value)))


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def _current(run: dict[str, Any], steps: list[dict[str, Any]]) -> tuple[str, str]:
    """Time left and progress of the task running now."""
    if run["status"] in RUN_TERMINAL:
        return "0", "100.0"
    running = [s for s in steps if s["status"] == "RUNNING"]
    if not running:
        return "", "0.0"
    step = running[0]
    fraction = float(step.get("progress") or 0.0)
    started = _epoch(step.get("started_at"))
    left: float | None = None
    if started is not None and fraction > 0:
        elapsed = max(0.0, time.time() - started)
        left = elapsed * (1 - fraction) / fraction
    elif started is not None and (step.get("baseline") or {}).get("p50_ms"):
        left = step["baseline"]["p50_ms"] / 1000 - (time.time() - started)
    return _seconds(left), _percent(100.0 * fraction)


def scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _destination_status(resource: dict[str, Any]) -> str:
    result = str(resource.get("action_result") or "")
    if result.upper().startswith(("ERROR", "FAILED")):
        if result.startswith("Error (") and result.endswith(")"):
            return result
        metadata = resource.get("metadata") or {}
        reason = metadata.get("error") or metadata.get("message") or result
        return f"Error ({reason})"
    return "Saved"


def _destinations(
    block: dict[str, Any], word: str, own: list[dict[str, Any]], shared: list[dict[str, Any]]
) -> Node:
    """The format's destinations: those its own steps reported, those a shared step reported
    for one of the block's URLs, then the block's URLs nobody reported (``Saved`` once the
    format finished, an error once it failed, empty before)."""
    asked = [str(d) for d in _as_list(block.get("destination"))]
    own_keys = {s["key"] for s in own}
    mine = [
        r
        for r in shared
        if r["type"] == "destination" and (r.get("step") in own_keys or r["resource_id"] in asked)
    ]
    node: Node = []
    for r in mine:
        node += [
            ("destination", str(r["resource_id"])),
            ("destination_status", _destination_status(r)),
        ]
    reported = {str(r["resource_id"]) for r in mine}
    pending = {"Finished": "Saved", "Error": "Error (not saved)"}.get(word, "")
    for url in asked:
        if url not in reported:
            node += [("destination", url), ("destination_status", pending)]
    return node


def _ended_at(steps: list[dict[str, Any]]) -> str | None:
    """When the last of the steps ended, once they all did (None before, or without steps)."""
    ends = [s.get("finished_at") for s in steps]
    done = [e for e in ends if e]
    return max(done) if steps and len(done) == len(ends) else None


def _times(own: list[dict[str, Any]], run: dict[str, Any]) -> Node:
    steps = own or [run]
    started = [s["started_at"] for s in steps if s.get("started_at")]
    return [
        ("created", vendor_date(steps[0].get("created_at"))),
        ("started", vendor_date(min(started) if started else None)),
        ("finished", vendor_date(_ended_at(steps))),
    ]


def format_node(
    run: dict[str, Any],
    layout: Layout,
    index: int,
    block: dict[str, Any],
    resources: list[dict[str, Any]],
    events: list[dict[str, Any]] | None,
) -> Node:
    own = layout.formats[index]
    word = format_word(run, layout, own)
    node: Node = [("id", str(own[0]["id"]) if own else ""), ("status", word)]
    node += _times(own, run)
    node += [
        (str(k), scalar(v))
        for k, v in block.items()
        if k not in OWN_FIELDS and not isinstance(v, dict | list)
    ]
    own_keys = {s["key"] for s in own}
    for kind in DESTINATION_FIELDS:
        node += [
            (kind, str(r["resource_id"]))
            for r in resources
            if r["type"] == kind and r.get("step") in own_keys
        ]
    node += _destinations(block, word, own, resources)
    if events is not None:
        ids = {s["id"] for s in (*layout.before, *layout.between, *own, *layout.after)}
        states: Node = [
            ("state", [("time", vendor_date(e["time"])), ("message", str(e["message"] or ""))])
            for e in events
            if e.get("step_id") in ids
        ]
        node.append(("task_status", states))
    return node


async def layout_of(legato: Services, p: Principal, head: RunHead, run: dict[str, Any]) -> Layout:
    """The layout of ``run``, the view of the run at ``head``."""
    workflow = await legato.workflows.get(p, run["workflow"], run["workflow_version"])
    foreach_keys = {
        str(s.get("id"))
        for s in workflow["definition"].get("steps") or []
        if s.get("foreach") is not None
    }
    top = [s for s in run.get("steps", []) if s.get("parent_step_id") is None]
    items: dict[str, list[dict[str, Any]]] = {}
    for step in top:
        if step["key"] in foreach_keys and step.get("counts_by_status"):
            level = await legato.status.steps(p, parent=step["id"])(head).body()
            items[step["key"]] = level["steps"]
    return Layout.of(top, foreach_keys, items, len(blocks_of(run)))


def blocks_of(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``<format>`` blocks AddMedia sent, in order."""
    return [
        b if isinstance(b, dict) else {} for b in _as_list((run.get("inputs") or {}).get("formats"))
    ]


async def media_node(legato: Services, p: Principal, head: RunHead, *, task_status: bool) -> Node:
    """One media as GetStatus answers it: the run at ``head``'s version."""
    status = legato.status
    run: dict[str, Any] = await status.run(p)(head).body()
    events = (await status.events(p)(head).body())["events"]
    resources = (await status.resources(p)(head).body())["resources"]
    layout = await layout_of(legato, p, head, run)
    inputs = run.get("inputs") or {}
    word = media_word(run, layout)
    time_left = (run.get("time_left") or {}).get("seconds")
    if run["status"] in RUN_TERMINAL:
        time_left = 0
    every = [*layout.before, *layout.between, *(s for own in layout.formats for s in own)]
    left_now, progress_now = _current(run, [*every, *layout.after])
    saving = layout.after or [s for own in layout.formats for s in own]
    node: Node = [
        ("id", str(run["id"])),
        ("userid", str(p.key_id)),
        ("version", __version__),
        ("sourcefile", scalar(inputs.get("source"))),
        ("status", word),
        ("prevstatus", _prev_word(events, word)),
        ("notifyurl", scalar(inputs.get("notify"))),
        ("created", vendor_date(run.get("created_at"))),
        ("started", vendor_date(run.get("started_at"))),
        ("finished", vendor_date(run.get("finished_at"))),
        ("downloaded", vendor_date(_ended_at(layout.before))),
        ("uploaded", vendor_date(_ended_at(saving))),
        ("time_left", _seconds(time_left)),
        ("progress", _percent(run["progress"]["percent"])),
        ("time_left_current", left_now),
        ("progress_current", progress_now),
    ]
    shown = events if task_status else None
    node += [
        ("format", format_node(run, layout, i, block, resources, shown))
        for i, block in enumerate(blocks_of(run))
    ]
    return node
