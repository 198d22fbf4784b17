"""Schedules, pure: what a schedule says (validated), when it fires, what a pass of the
scheduler does with the fire times that came due. No IO.

Cron expressions are parsed and stepped by ``cronsim`` and time zones come from ``zoneinfo``
(with ``tzdata``), so daylight-saving time behaves as Debian's cron does: a fire time in an
hour that a zone skips fires once, right after the gap; a fire time in an hour that repeats
fires once, on its first pass; expressions with ``*`` in the hour field follow the real
clock (``*/30 * * * *`` fires every 30 real minutes through the change). Intervals
(``every``) count real seconds from their anchor and ignore the zone.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from legato.model.durations import parse_duration

__all__ = [
    "ALIASES",
    "NAME_PATTERN",
    "OVERLAP_POLICIES",
    "Pass",
    "ScheduleDeclaration",
    "ScheduleFields",
    "ScheduleSpec",
    "fire_scope",
    "iso_time",
    "jitter_of",
    "next_fire",
    "next_fires",
    "overlap_action",
    "parse_instant",
    "plan_pass",
]

#: The cron aliases of Vixie cron, as the 5-field expressions they stand for.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
OVERLAP_POLICIES = ("skip", "allow", "buffer_one", "cancel_previous")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
#: fire times a single pass looks at; a longer backlog is walked over in further passes,
#: and fire times far before the catch-up window are jumped over rather than walked
MAX_FIRES_PER_PASS = 1000
#: missed fire times a pass records one by one (the latest); the rest are only counted
MAX_MISSED_RECORDED = 100
_YEAR = 366 * 86400.0


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA zone names this installation knows (the system's, else ``tzdata``'s)."""
    return frozenset(available_timezones()) | {"UTC"}


def iso_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(value: Any) -> float:
    """An instant as epoch seconds: ISO 8601 (UTC unless it has an offset) or a number."""
    if isinstance(value, bool):
        raise ValueError("expected an ISO 8601 time or epoch seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < 253402300800:
            raise ValueError("epoch seconds out of range")
        return float(value)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO 8601 time: {value!r}") from None
    else:
        raise ValueError("expected an ISO 8601 time or epoch seconds")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _duration(value: Any) -> float:
    return parse_duration(value)


def _instant(value: Any) -> float | None:
    return None if value is None else parse_instant(value)


Duration = Annotated[float, BeforeValidator(_duration)]
Instant = Annotated[float | None, BeforeValidator(_instant)]


def _cron(expression: str) -> str:
    """The expression cronsim steps: aliases written out, whitespace normalised."""
    text = " ".join(expression.split())
    return ALIASES.get(text.lower(), text)


class ScheduleSpec(BaseModel):
    """When a schedule fires and what it does when runs overlap or fire times were missed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = Field(
        None,
        description="5 fields (minute hour day month weekday), 6 with seconds first, or an "
        "alias such as @hourly",
    )
    every: Duration | None = Field(None, description="an interval instead of cron: 15m, 1h")
    anchor: Instant = Field(None, description="what an interval counts from (default: start_at)")
    timezone: str = Field("UTC", description="IANA zone the cron expression reads in")
    start_at: Instant = None
    end_at: Instant = None
    jitter: Duration = Field(0.0, description="each fire is delayed by up to this much")
    overlap: Literal["skip", "allow", "buffer_one", "cancel_previous"] = "skip"
    catchup: Duration = Field(60.0, description="how late a fire time may still start")
    catchup_policy: Literal["all", "latest"] = "all"

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        expression = _cron(value)
        if len(expression.split()) not in (5, 6):
            raise ValueError(
                "a cron expression has 5 fields (minute hour day month weekday), 6 with "
                "seconds first, or is an alias such as @hourly"
            )
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except (CronSimError, ValueError) as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return " ".join(value.split())

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. Europe/Berlin)")
        return value

    @field_validator("every")
    @classmethod
    def _check_every(cls, value: float | None) -> float | None:
        if value is not None and not 1.0 <= value <= _YEAR:
            raise ValueError("an interval is at least 1s and at most a year")
        return value

    @field_validator("jitter")
    @classmethod
    def _check_jitter(cls, value: float) -> float:
        if value > 86400:
            raise ValueError("jitter is at most 1d")
        return value

    @field_validator("catchup")
    @classmethod
    def _check_catchup(cls, value: float) -> float:
        if not 1.0 <= value <= _YEAR:
            raise ValueError("the catch-up window is at least 1s and at most a year")
        return value

    @field_validator("end_at")
    @classmethod
    def _check_end(cls, value: float | None, info: Any) -> float | None:
        start = info.data.get("start_at")
        if value is not None and start is not None and value <= start:
            raise ValueError("end_at must be after start_at")
        return value

    @model_validator(mode="after")
    def _cron_or_every(self) -> ScheduleSpec:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give either cron or every")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def as_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ScheduleDeclaration(ScheduleSpec):
    """A schedule as a workflow's definition declares it (``schedules:``)."""

    name: str = Field(pattern=NAME_PATTERN, description="unique in the namespace")
    description: str = Field("", max_length=2000)
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="pin a workflow version")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="${{ schedule.fire_time }} and the like may be used"
    )
    labels: dict[
        Annotated[str, Field(min_length=1, max_length=200)], Annotated[str, Field(max_length=200)]
    ] = Field(default_factory=dict, max_length=50)

    @field_validator("name")
    @classmethod
    def _not_a_number(cls, value: str) -> str:
        if value.isdigit():
            raise ValueError("a schedule's name is not only digits (those name its id)")
        return value

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec.model_validate({k: getattr(self, k) for k in ScheduleSpec.model_fields})


class ScheduleFields(ScheduleDeclaration):
    """A schedule as the API takes it: with the workflow it starts, and paused or not."""

    workflow: str | None = Field(None, max_length=100)
    paused: bool = False
    note: str | None = Field(None, max_length=2000, description="why it is paused, say")


# -- fire times ---------------------------------------------------------------------------


def next_fire(spec: ScheduleSpec, after: float) -> float | None:
    """The first fire time strictly after ``after`` within ``start_at`` .. ``end_at``."""
    if spec.start_at is not None and after < spec.start_at:
        after = spec.start_at - 1e-6  # a fire time at start_at itself counts
    if spec.every is not None:
        anchor = spec.anchor if spec.anchor is not None else (spec.start_at or 0.0)
        steps = math.floor((after - anchor) / spec.every) + 1
        found = anchor + steps * spec.every
        if found <= after:  # rounding at the boundary
            found += spec.every
    else:
        assert spec.cron is not None
        zone = spec.zone
        # cronsim looks from whole seconds and strictly after them
        start = datetime.fromtimestamp(math.floor(after), zone)
        try:
            found = next(CronSim(_cron(spec.cron), start)).timestamp()
        except StopIteration:
            return None
    if spec.end_at is not None and found > spec.end_at:
        return None
    return found


def next_fires(spec: ScheduleSpec, after: float, count: int) -> list[float]:
    out: list[float] = []
    t: float | None = after
    while len(out) < count:
        t = next_fire(spec, t) if t is not None else None
        if t is None:
            break
        out.append(t)
    return out


def jitter_of(spec: ScheduleSpec, schedule_id: int, fire_time: float) -> float:
    """The delay of one fire: the same in every process (derived from the schedule and the
    fire time), spread over ``[0, jitter)``."""
    if not spec.jitter:
        return 0.0
    digest = hashlib.sha256(f"{schedule_id}:{fire_time!r}".encode()).digest()
    return spec.jitter * (int.from_bytes(digest[:8], "big") / 2.0**64)


@dataclass
class Pass:
    """What one pass of the scheduler does with a schedule's fire times that came due."""

    start: list[float] = field(default_factory=list)  # fire times to start (overlap aside)
    missed: list[float] = field(default_factory=list)  # missed fire times recorded one by one
    missed_count: int = 0  # every missed fire time counted (recorded or not)
    missed_uncounted: bool = False  # a backlog so long that part of it was jumped over
    next_fire: float | None = None  # the first fire time not yet due


def plan_pass(spec: ScheduleSpec, schedule_id: int, first: float | None, now: float) -> Pass:
    """Fire times from ``first`` (the schedule's next fire time) that are due at ``now``:
    those within the catch-up window start (all, or the latest only), older ones are missed."""
    out = Pass()
    t = first
    horizon = now - spec.catchup
    window: list[float] = []
    recent_missed: deque[float] = deque(maxlen=MAX_MISSED_RECORDED)
    looked = 0
    while t is not None and t + jitter_of(spec, schedule_id, t) <= now:
        if looked >= MAX_FIRES_PER_PASS:
            if t < horizon:  # far behind: jump to the window instead of walking there
                out.missed_uncounted = True
                t = next_fire(spec, horizon)
                looked = 0
                continue
            break  # many due inside the window: the next pass goes on from here
        looked += 1
        if t + jitter_of(spec, schedule_id, t) < horizon:
            out.missed_count += 1
            recent_missed.append(t)
        else:
            window.append(t)
        t = next_fire(spec, t)
    out.next_fire = t
    if spec.catchup_policy == "latest" and len(window) > 1:
        # only the latest starts; the ones it stands for are missed
        for old in window[:-1]:
            out.missed_count += 1
            recent_missed.append(old)
        window = window[-1:]
    out.missed = sorted(recent_missed)
    out.start = window
    return out


def overlap_action(policy: str, previous_open: bool, buffered: bool) -> str:
    """``start``, ``skip``, ``buffer`` or ``cancel_and_start`` for a fire time whose
    schedule's previous run is (or is not) still going, with a fire already buffered."""
    if not previous_open or policy == "allow":
        return "start"
    if policy == "cancel_previous":
        return "cancel_and_start"
    if policy == "buffer_one" and not buffered:
        return "buffer"
    return "skip"


def fire_scope(
    schedule_id: int, name: str, spec: ScheduleSpec, fire_time: float, manual: bool
) -> dict[str, Any]:
    """What a schedule's inputs and labels may use: ``${{ schedule.fire_time }}`` and more."""
    local = datetime.fromtimestamp(fire_time, spec.zone)
    return {
        "schedule": {
            "id": schedule_id,
            "name": name,
            "fire_time": iso_time(fire_time),
            "timestamp": fire_time,
            "local_time": local.isoformat(),
            "date": local.date().isoformat(),
            "timezone": spec.timezone,
            "manual": manual,
        }
    }
