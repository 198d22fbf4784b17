"""Fire-time arithmetic, without a database: cron in zones through daylight-saving changes,
intervals with anchors, windows, jitter, catch-up passes and the overlap table."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from legato.model.schedules import (
    MAX_FIRES_PER_PASS,
    ScheduleFields,
    ScheduleSpec,
    iso_time,
    jitter_of,
    next_fire,
    next_fires,
    overlap_action,
    plan_pass,
)


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def local(ts: float, zone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat()


def test_a_daily_time_in_the_skipped_hour_fires_once_right_after_it() -> None:
    spec = ScheduleSpec(cron="30 2 * * *", timezone="Europe/Berlin")
    times = next_fires(spec, at("2030-03-30T12:00:00", "Europe/Berlin"), 3)
    assert [local(t, "Europe/Berlin") for t in times] == [
        "2030-03-31T03:00:00+02:00",  # 02:30 does not exist that night
        "2030-04-01T02:30:00+02:00",
        "2030-04-02T02:30:00+02:00",
    ]


def test_a_daily_time_in_the_repeated_hour_fires_once() -> None:
    spec = ScheduleSpec(cron="30 2 * * *", timezone="Europe/Berlin")
    times = next_fires(spec, at("2030-10-26T12:00:00", "Europe/Berlin"), 2)
    assert [local(t, "Europe/Berlin") for t in times] == [
        "2030-10-27T02:30:00+02:00",  # the first pass; 02:30+01:00 does not fire again
        "2030-10-28T02:30:00+01:00",
    ]
    assert times[1] - times[0] == 25 * 3600


def test_a_wildcard_hour_follows_the_real_clock_through_the_change() -> None:
    spec = ScheduleSpec(cron="0,30 * * * *", timezone="America/New_York")
    start = at("2030-11-03T00:45:00", "America/New_York")
    times = next_fires(spec, start, 5)
    assert [t - start for t in times] == [900, 2700, 4500, 6300, 8100]  # every 30 real minutes


def test_aliases_seconds_and_weekday_names() -> None:
    t0 = at("2030-01-01T00:00:00")
    assert next_fire(ScheduleSpec(cron="@hourly"), t0) == t0 + 3600
    assert next_fire(ScheduleSpec(cron="@daily"), t0) == t0 + 86400
    assert next_fire(ScheduleSpec(cron="@weekly"), t0) == at("2030-01-06T00:00:00")  # a Sunday
    assert next_fire(ScheduleSpec(cron="@yearly"), t0) == at("2031-01-01T00:00:00")
    assert next_fires(ScheduleSpec(cron="*/15 * * * * *"), t0, 3) == [t0 + 15, t0 + 30, t0 + 45]
    assert next_fire(ScheduleSpec(cron="0 9 * * MON-FRI"), t0) == at("2030-01-01T09:00:00")
    # strictly after, from a fraction of a second
    assert next_fire(ScheduleSpec(cron="* * * * * *"), t0 + 0.5) == t0 + 1


def test_intervals_count_from_their_anchor() -> None:
    spec = ScheduleSpec(every="15m")
    assert next_fire(spec, at("2030-01-01T10:07:00")) == at("2030-01-01T10:15:00")
    anchored = ScheduleSpec(every="1h", anchor="2030-01-01T00:20:00Z")
    assert next_fire(anchored, at("2030-01-01T10:07:00")) == at("2030-01-01T10:20:00")
    assert next_fire(anchored, at("2030-01-01T10:20:00")) == at("2030-01-01T11:20:00")


def test_start_and_end_bound_the_fire_times() -> None:
    spec = ScheduleSpec(
        every=60, start_at="2030-01-01T00:00:00Z", end_at="2030-01-01T00:02:00Z", jitter=0
    )
    assert next_fires(spec, 0, 10) == [
        at("2030-01-01T00:00:00"),  # a fire time at start_at counts
        at("2030-01-01T00:01:00"),
        at("2030-01-01T00:02:00"),
    ]


def test_jitter_is_the_same_everywhere_and_within_its_bound() -> None:
    spec = ScheduleSpec(every=60, jitter="30s")
    delays = [jitter_of(spec, 7, 60.0 * i) for i in range(200)]
    assert all(0 <= d < 30 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150  # spread, not one value
    assert delays == [jitter_of(spec, 7, 60.0 * i) for i in range(200)]
    assert jitter_of(ScheduleSpec(every=60), 7, 60.0) == 0.0


def test_a_pass_starts_the_window_and_misses_what_is_older() -> None:
    spec = ScheduleSpec(every=60, catchup="3m")
    p = plan_pass(spec, 1, 60.0, 600.0)
    assert p.start == [420.0, 480.0, 540.0, 600.0]
    assert p.missed == [60.0, 120.0, 180.0, 240.0, 300.0, 360.0] and p.missed_count == 6
    assert p.next_fire == 660.0
    latest = plan_pass(ScheduleSpec(every=60, catchup="3m", catchup_policy="latest"), 1, 60.0, 600)
    assert latest.start == [600.0] and latest.missed_count == 9


def test_a_very_long_backlog_is_jumped_over_not_walked() -> None:
    spec = ScheduleSpec(every=1, catchup="10s")
    p = plan_pass(spec, 1, 1.0, 10_000_000.0)
    assert p.missed_uncounted and p.missed_count == MAX_FIRES_PER_PASS
    assert p.start[0] >= 10_000_000.0 - 10 and p.start[-1] == 10_000_000.0
    assert len(p.missed) == 100  # the latest missed ones are recorded one by one


@pytest.mark.parametrize(
    ("policy", "open_", "buffered", "action"),
    [
        ("skip", False, False, "start"),
        ("skip", True, False, "skip"),
        ("allow", True, True, "start"),
        ("buffer_one", True, False, "buffer"),
        ("buffer_one", True, True, "skip"),
        ("cancel_previous", True, False, "cancel_and_start"),
        ("cancel_previous", False, False, "start"),
    ],
)
def test_overlap_table(policy: str, open_: bool, buffered: bool, action: str) -> None:
    assert overlap_action(policy, open_, buffered) == action


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * * *"}, "cron"),
        ({"cron": "@sometimes"}, "cron"),
        ({"every": "1m", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"every": "1m", "timezone": "../etc/passwd"}, "timezone"),
        ({"every": "1m", "start_at": 100, "end_at": 50}, "end_at"),
        ({"every": "1m", "catchup": "0s"}, "catchup"),
        ({"every": "500ms"}, "every"),
        ({"every": "1m", "jitter": "2d"}, "jitter"),
        ({"every": "1m", "cron": "* * * * *"}, ""),
    ],
)
def test_bad_specs_name_their_field(body: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ScheduleFields.model_validate({"name": "x", **body})
    assert path in [".".join(str(p) for p in e["loc"]) for e in exc.value.errors()]


def test_iso_time() -> None:
    assert iso_time(at("2030-01-01T00:00:00")) == "2030-01-01T00:00:00.000Z"
    assert iso_time(None) is None
    assert datetime.fromisoformat(iso_time(1.5) or "").tzinfo == UTC
