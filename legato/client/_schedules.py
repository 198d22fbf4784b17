"""Schedules in the client: typed results, the calls (no IO), and the methods the sync and
async clients take from here (the ``_call`` of each sends them)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from legato.client._base import API, Call, _items, _json, seg
from legato.client._models import _dict, _int, _opt_int, _opt_str, _str, parse_datetime

__all__ = ["AsyncScheduleCalls", "Schedule", "ScheduleCalls", "ScheduleFire"]

T = TypeVar("T")
Ref = int | str


@dataclass(frozen=True)
class ScheduleFire:
    """One fire time of a schedule and what came of it."""

    fire_time: datetime | None
    outcome: str  # started | buffered | skipped_overlap | missed | paused | failed
    run_id: int | None
    message: str | None
    manual: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScheduleFire:
        return cls(
            fire_time=parse_datetime(data.get("fire_time")),
            outcome=_str(data, "outcome"),
            run_id=_opt_int(data, "run_id"),
            message=_opt_str(data, "message"),
            manual=bool(data.get("manual")),
        )


@dataclass(frozen=True)
class Schedule:
    id: int
    name: str
    workflow: str
    version: int | None
    cron: str | None
    every: float | None
    timezone: str
    overlap: str
    state: str  # active | paused | ended
    paused: bool
    next_fire_times: list[datetime]
    recent_fires: list[ScheduleFire]
    counts: dict[str, int]
    inputs: dict[str, Any]
    labels: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schedule:
        every = data.get("every")
        return cls(
            id=_int(data, "id"),
            name=_str(data, "name"),
            workflow=_str(data, "workflow"),
            version=_opt_int(data, "version"),
            cron=_opt_str(data, "cron"),
            every=float(every) if isinstance(every, int | float) else None,
            timezone=_str(data, "timezone", "UTC"),
            overlap=_str(data, "overlap", "skip"),
            state=_str(data, "state"),
            paused=bool(data.get("paused")),
            next_fire_times=[
                t for t in (parse_datetime(v) for v in data.get("next_fire_times") or []) if t
            ],
            recent_fires=[ScheduleFire.from_json(f) for f in data.get("recent_fires") or []],
            counts={k: int(v) for k, v in _dict(data, "counts").items()},
            inputs=_dict(data, "inputs"),
            labels=_dict(data, "labels"),
            raw=dict(data),
        )


def _schedule(r: Any) -> Schedule:
    return Schedule.from_json(_json(r))


def create_schedule(body: Mapping[str, Any]) -> Call[Schedule]:
    return Call("POST", f"{API}/schedules", _schedule, json=dict(body))


def list_schedules(workflow: str | None = None) -> Call[list[Schedule]]:
    params = [("workflow", workflow)] if workflow else []
    return Call(
        "GET",
        f"{API}/schedules",
        lambda r: [Schedule.from_json(s) for s in _items(r, "schedules")],
        params,
    )


def get_schedule(ref: Ref) -> Call[Schedule]:
    return Call("GET", f"{API}/schedules/{seg(ref)}", _schedule)


def update_schedule(ref: Ref, changes: Mapping[str, Any]) -> Call[Schedule]:
    return Call("PATCH", f"{API}/schedules/{seg(ref)}", _schedule, json=dict(changes))


def delete_schedule(ref: Ref) -> Call[None]:
    return Call("DELETE", f"{API}/schedules/{seg(ref)}", lambda r: None)


def pause_schedule(ref: Ref, note: str | None = None) -> Call[Schedule]:
    return Call("POST", f"{API}/schedules/{seg(ref)}/pause", _schedule, json={"note": note})


def resume_schedule(ref: Ref, note: str | None = None) -> Call[Schedule]:
    return Call("POST", f"{API}/schedules/{seg(ref)}/resume", _schedule, json={"note": note})


def trigger_schedule(ref: Ref, overlap: str | None = None) -> Call[ScheduleFire]:
    return Call(
        "POST",
        f"{API}/schedules/{seg(ref)}/trigger",
        lambda r: ScheduleFire.from_json(_json(r)),
        json={"overlap": overlap},
    )


def next_fire_times(ref: Ref, count: int = 10) -> Call[list[datetime]]:
    return Call(
        "GET",
        f"{API}/schedules/{seg(ref)}/next",
        lambda r: [
            t for t in (parse_datetime(v) for v in _json(r).get("next_fire_times") or []) if t
        ],
        [("count", str(count))],
    )


def schedule_fires(ref: Ref, limit: int = 50) -> Call[list[ScheduleFire]]:
    return Call(
        "GET",
        f"{API}/schedules/{seg(ref)}/fires",
        lambda r: [ScheduleFire.from_json(f) for f in _items(r, "fires")],
        [("limit", str(limit))],
    )


class ScheduleCalls:
    """The schedule methods of :class:`legato.client.Client`."""

    def _call(self, call: Call[T]) -> T:  # provided by the client
        raise NotImplementedError

    def create_schedule(self, **body: Any) -> Schedule:
        """``name``, ``workflow``, ``cron`` or ``every``, and the rest as the API takes it."""
        return self._call(create_schedule(body))

    def list_schedules(self, workflow: str | None = None) -> list[Schedule]:
        return self._call(list_schedules(workflow))

    def get_schedule(self, ref: Ref) -> Schedule:
        return self._call(get_schedule(ref))

    def update_schedule(self, ref: Ref, **changes: Any) -> Schedule:
        return self._call(update_schedule(ref, changes))

    def delete_schedule(self, ref: Ref) -> None:
        self._call(delete_schedule(ref))

    def pause_schedule(self, ref: Ref, note: str | None = None) -> Schedule:
        return self._call(pause_schedule(ref, note))

    def resume_schedule(self, ref: Ref, note: str | None = None) -> Schedule:
        return self._call(resume_schedule(ref, note))

    def trigger_schedule(self, ref: Ref, overlap: str | None = None) -> ScheduleFire:
        return self._call(trigger_schedule(ref, overlap))

    def next_fire_times(self, ref: Ref, count: int = 10) -> list[datetime]:
        return self._call(next_fire_times(ref, count))

    def schedule_fires(self, ref: Ref, limit: int = 50) -> list[ScheduleFire]:
        return self._call(schedule_fires(ref, limit))


class AsyncScheduleCalls:
    """The schedule methods of :class:`legato.client.AsyncClient`."""

    def _call(self, call: Call[T]) -> Awaitable[T]:  # provided by the client
        raise NotImplementedError

    async def create_schedule(self, **body: Any) -> Schedule:
        return await self._call(create_schedule(body))

    async def list_schedules(self, workflow: str | None = None) -> list[Schedule]:
        return await self._call(list_schedules(workflow))

    async def get_schedule(self, ref: Ref) -> Schedule:
        return await self._call(get_schedule(ref))

    async def update_schedule(self, ref: Ref, **changes: Any) -> Schedule:
        return await self._call(update_schedule(ref, changes))

    async def delete_schedule(self, ref: Ref) -> None:
        await self._call(delete_schedule(ref))

    async def pause_schedule(self, ref: Ref, note: str | None = None) -> Schedule:
        return await self._call(pause_schedule(ref, note))

    async def resume_schedule(self, ref: Ref, note: str | None = None) -> Schedule:
        return await self._call(resume_schedule(ref, note))

    async def trigger_schedule(self, ref: Ref, overlap: str | None = None) -> ScheduleFire:
        return await self._call(trigger_schedule(ref, overlap))

    async def next_fire_times(self, ref: Ref, count: int = 10) -> list[datetime]:
        return await self._call(next_fire_times(ref, count))

    async def schedule_fires(self, ref: Ref, limit: int = 50) -> list[ScheduleFire]:
        return await self._call(schedule_fires(ref, limit))
