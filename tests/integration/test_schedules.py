"""Schedules on both stores, on a clock the tests move: fire times become runs exactly once,
overlap policies, catch-up, pause and resume, delete while due, declared schedules."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import admin, apply

from legato.engine.scheduler import Scheduler
from legato.model.errors import Conflict
from legato.model.starts import StartRun
from legato.runtime import Legato
from legato.settings import Settings
from tests.conftest import LOCAL_RECEIVERS

T0 = 1_900_000_000.0  # a whole minute (2030-03-17T17:46:40Z is not; we only need it fixed)
T0 = T0 - T0 % 3600  # a whole hour


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


QUICK = """
name: quick
inputs:
  day: {type: string, default: ""}
steps:
  - id: only
    uses: sleep
    with: {duration: 1ms}
"""
HELD = """
name: held
steps:
  - id: wait
    uses: approval
"""


@pytest.fixture
async def clock(legato: Legato) -> Clock:
    c = Clock(T0)
    legato.schedules.clock = c
    await apply(legato, QUICK)
    await apply(legato, HELD)
    return c


async def create(legato: Legato, **body: Any) -> dict[str, Any]:
    return await legato.schedules.create(await admin(legato), body)


async def tick(legato: Legato, now: float) -> int:
    return await Scheduler(legato.db, legato.transitions, clock=lambda: now).tick(now)


async def runs_of(legato: Legato, schedule_id: int) -> list[dict[str, Any]]:
    from legato.model.filters import RunFilter

    p = await admin(legato)
    page = await legato.runs.list_runs(
        p, RunFilter(p.namespace_id, schedule_id=schedule_id), 500, None
    )
    return sorted(page["runs"], key=lambda r: r["fire_time"])


async def fires(legato: Legato, ref: str) -> list[tuple[str, str]]:
    out = await legato.schedules.fires(await admin(legato), ref, 500)
    return sorted((f["fire_time"], f["outcome"]) for f in out)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo("UTC")).isoformat(timespec="milliseconds")[:-6] + "Z"


async def test_each_fire_time_starts_one_run(legato: Legato, clock: Clock) -> None:
    s = await create(legato, name="every-minute", workflow="quick", every="1m", overlap="allow")
    assert s["next_fire_times"][:3] == [iso(T0 + 60), iso(T0 + 120), iso(T0 + 180)]
    assert await tick(legato, T0 + 59) == 0
    assert await tick(legato, T0 + 60) == 1
    assert await tick(legato, T0 + 61) == 0  # the same fire time never again
    assert await tick(legato, T0 + 125) == 1
    runs = await runs_of(legato, s["id"])
    assert [r["fire_time"] for r in runs] == [iso(T0 + 60), iso(T0 + 120)]
    assert all(r["schedule_id"] == s["id"] and r["workflow"] == "quick" for r in runs)
    got = await legato.schedules.get(await admin(legato), "every-minute")
    assert got["counts"] == {"started": 2, "skipped_overlap": 0, "missed": 0, "failed": 0}
    assert [(f["fire_time"], f["outcome"], f["run_id"]) for f in got["recent_fires"]] == [
        (iso(T0 + 120), "started", runs[1]["id"]),
        (iso(T0 + 60), "started", runs[0]["id"]),
    ]
    assert got["next_fire_time"] == iso(T0 + 180)


async def test_concurrent_schedulers_start_each_fire_time_once(
    legato: Legato, clock: Clock
) -> None:
    s = await create(
        legato, name="busy", workflow="quick", every="1s", catchup="1h", overlap="allow"
    )
    schedulers = [Scheduler(legato.db, legato.transitions) for _ in range(4)]
    for second in range(1, 11):
        now = T0 + second
        await asyncio.gather(*(sch.tick(now) for sch in schedulers))
    runs = await runs_of(legato, s["id"])
    assert [r["fire_time"] for r in runs] == [iso(T0 + i) for i in range(1, 11)]


async def test_a_recorded_fire_time_starts_nothing_again(legato: Legato, clock: Clock) -> None:
    """The unique key decides, whatever the schedule row says: a fire time recorded already
    (by a process that then lost track) is skipped."""
    from legato.engine.firing import fire_schedule
    from legato.store.schedules import find_schedule

    s = await create(legato, name="twice", workflow="quick", every="1m", overlap="allow")
    p = await admin(legato)

    async def fire_at(now: float) -> int:
        async def tx_fn(tx: Any) -> int:
            row = await find_schedule(tx.conn, p.namespace_id, s["id"])
            fired = await fire_schedule(tx, legato.transitions, row, now, manual_time=T0 + 60)
            return len(fired.started)

        return int(await legato.db.write(tx_fn))

    assert await fire_at(T0 + 60) == 1
    assert await fire_at(T0 + 60) == 0
    assert len(await runs_of(legato, s["id"])) == 1


async def test_catch_up_within_the_window_starts_every_missed_time(
    legato: Legato, clock: Clock
) -> None:
    s = await create(
        legato, name="catch", workflow="quick", every="1m", catchup="10m", overlap="allow"
    )
    assert await tick(legato, T0 + 300) == 5  # down for 5 minutes, window 10
    assert [r["fire_time"] for r in await runs_of(legato, s["id"])] == [
        iso(T0 + 60 * i) for i in range(1, 6)
    ]


async def test_catch_up_longer_than_the_window_records_older_times_as_missed(
    legato: Legato, clock: Clock
) -> None:
    s = await create(
        legato, name="late", workflow="quick", every="1m", catchup="2m", overlap="allow"
    )
    assert await tick(legato, T0 + 600) == 3  # 480, 540 and 600 are within 2 minutes
    assert [r["fire_time"] for r in await runs_of(legato, s["id"])] == [
        iso(T0 + 480),
        iso(T0 + 540),
        iso(T0 + 600),
    ]
    assert await fires(legato, "late") == sorted(
        [(iso(T0 + 60 * i), "missed") for i in range(1, 8)]
        + [(iso(T0 + 60 * i), "started") for i in (8, 9, 10)]
    )
    got = await legato.schedules.get(await admin(legato), str(s["id"]))
    assert got["counts"]["missed"] == 7 and got["counts"]["started"] == 3


async def test_catch_up_latest_starts_only_the_latest(legato: Legato, clock: Clock) -> None:
    s = await create(
        legato, name="newest", workflow="quick", every="1m", catchup="1h", catchup_policy="latest"
    )
    assert await tick(legato, T0 + 300) == 1
    assert [r["fire_time"] for r in await runs_of(legato, s["id"])] == [iso(T0 + 300)]
    assert await fires(legato, "newest") == sorted(
        [(iso(T0 + 60 * i), "missed") for i in range(1, 5)] + [(iso(T0 + 300), "started")]
    )


async def test_overlap_skip(legato: Legato, clock: Clock) -> None:
    s = await create(legato, name="skipper", workflow="held", every="1m", overlap="skip")
    await tick(legato, T0 + 60)
    await tick(legato, T0 + 120)
    await tick(legato, T0 + 180)
    assert len(await runs_of(legato, s["id"])) == 1
    assert await fires(legato, "skipper") == [
        (iso(T0 + 60), "started"),
        (iso(T0 + 120), "skipped_overlap"),
        (iso(T0 + 180), "skipped_overlap"),
    ]
    got = await legato.schedules.get(await admin(legato), "skipper")
    assert got["counts"]["skipped_overlap"] == 2


async def test_overlap_allow(legato: Legato, clock: Clock) -> None:
    s = await create(legato, name="allower", workflow="held", every="1m", overlap="allow")
    await tick(legato, T0 + 60)
    await tick(legato, T0 + 120)
    runs = await runs_of(legato, s["id"])
    assert [r["status"] for r in runs] == ["RUNNING", "RUNNING"]


async def test_overlap_buffer_one_starts_right_after_the_previous_run(
    legato: Legato, clock: Clock
) -> None:
    s = await create(legato, name="buffer", workflow="held", every="1m", overlap="buffer_one")
    p = await admin(legato)
    await tick(legato, T0 + 60)
    await tick(legato, T0 + 120)  # buffered
    await tick(legato, T0 + 180)  # one is buffered already: skipped
    assert await fires(legato, "buffer") == [
        (iso(T0 + 60), "started"),
        (iso(T0 + 120), "buffered"),
        (iso(T0 + 180), "skipped_overlap"),
    ]
    [first] = await runs_of(legato, s["id"])
    await tick(legato, T0 + 181)
    assert len(await runs_of(legato, s["id"])) == 1  # still going: it waits
    await legato.runs.signal(p, first["id"], "wait", {})
    await tick(legato, T0 + 182)
    runs = await runs_of(legato, s["id"])
    assert [r["fire_time"] for r in runs] == [iso(T0 + 60), iso(T0 + 120)]
    assert (await fires(legato, "buffer"))[1] == (iso(T0 + 120), "started")
    got = await legato.schedules.get(p, "buffer")
    assert got["buffered_fire_time"] is None and got["last_run_id"] == runs[1]["id"]


async def test_overlap_cancel_previous(legato: Legato, clock: Clock) -> None:
    s = await create(legato, name="replace", workflow="held", every="1m", overlap="cancel_previous")
    await tick(legato, T0 + 60)
    await tick(legato, T0 + 120)
    runs = await runs_of(legato, s["id"])
    assert [r["status"] for r in runs] == ["CANCELED", "RUNNING"]
    assert "newer run" in (runs[0]["error"] or {}).get("message", "")


async def test_pause_and_resume(legato: Legato, clock: Clock) -> None:
    s = await create(legato, name="napper", workflow="quick", every="1m")
    p = await admin(legato)
    clock.now = T0 + 30
    paused = await legato.schedules.pause(p, "napper", "maintenance")
    assert paused["state"] == "paused" and paused["note"] == "maintenance"
    assert paused["next_fire_time"] is None
    assert paused["next_fire_times"][0] == iso(T0 + 60)  # where a resume now would go on
    assert await tick(legato, T0 + 200) == 0
    clock.now = T0 + 200
    resumed = await legato.schedules.resume(p, "napper")
    assert resumed["state"] == "active"
    assert resumed["next_fire_time"] == iso(T0 + 240)
    assert await fires(legato, "napper") == [
        (iso(T0 + 60), "paused"),
        (iso(T0 + 120), "paused"),
        (iso(T0 + 180), "paused"),
    ]
    assert await tick(legato, T0 + 240) == 1
    assert [r["fire_time"] for r in await runs_of(legato, s["id"])] == [iso(T0 + 240)]


async def test_delete_while_a_fire_is_due(legato: Legato, clock: Clock) -> None:
    s = await create(legato, name="doomed", workflow="quick", every="1m")
    p = await admin(legato)
    clock.now = T0 + 90  # the fire at T0+60 is due and not yet fired
    await legato.schedules.delete(p, "doomed")
    assert await tick(legato, T0 + 90) == 0
    assert await runs_of(legato, s["id"]) == []
    assert (await legato.schedules.list_all(p)) == []


async def test_trigger_now_applies_the_overlap_policy(legato: Legato, clock: Clock) -> None:
    await create(legato, name="manual", workflow="held", every="1h", paused=True)
    p = await admin(legato)
    clock.now = T0 + 5
    first = await legato.schedules.trigger(p, "manual")
    assert first["outcome"] == "started" and first["manual"] is True
    assert first["fire_time"] == iso(T0 + 5)
    clock.now = T0 + 6
    second = await legato.schedules.trigger(p, "manual")
    assert second["outcome"] == "skipped_overlap" and second["run_id"] is None
    clock.now = T0 + 7
    third = await legato.schedules.trigger(p, "manual", overlap="allow")
    assert third["outcome"] == "started"


async def test_inputs_and_labels_use_the_fire_time(legato: Legato, clock: Clock) -> None:
    s = await create(
        legato,
        name="dated",
        workflow="quick",
        cron="0 1 * * *",
        timezone="Asia/Tokyo",
        inputs={"day": "${{ schedule.date }}"},
        labels={"fired": "${{ schedule.fire_time }}"},
        catchup="2d",
    )
    fire = s["next_fire_times"][0]
    assert fire.endswith("T16:00:00.000Z")  # 01:00 in Tokyo
    now = datetime.fromisoformat(fire.replace("Z", "+00:00")).timestamp()
    await tick(legato, now)
    [run] = await runs_of(legato, s["id"])
    detail = await legato.runs.get(await admin(legato), run["id"])
    tokyo_day = datetime.fromtimestamp(now, ZoneInfo("Asia/Tokyo")).date().isoformat()
    assert detail["inputs"] == {"day": tokyo_day}
    assert detail["labels"]["fired"] == fire


async def test_a_repeated_hour_fires_once_and_a_skipped_one_once(
    legato: Legato, clock: Clock
) -> None:
    """Europe/Berlin leaves 02:00-03:00 out on 2030-03-31 and runs it twice on 2030-10-27."""
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2030, 3, 30, 12, tzinfo=berlin).timestamp()
    clock.now = spring
    s = await create(
        legato,
        name="night",
        workflow="quick",
        cron="30 2 * * *",
        timezone="Europe/Berlin",
        overlap="allow",
    )
    for step in range(0, 48 * 3600, 600):  # ten-minute ticks over two days
        await tick(legato, spring + step)
    spring_fires = [r["fire_time"] for r in await runs_of(legato, s["id"])]
    assert spring_fires == ["2030-03-31T01:00:00.000Z", "2030-04-01T00:30:00.000Z"]
    autumn = datetime(2030, 10, 26, 12, tzinfo=berlin).timestamp()
    p = await admin(legato)
    clock.now = autumn
    await legato.schedules.update(p, "night", {"start_at": autumn})
    for step in range(0, 48 * 3600, 600):
        await tick(legato, autumn + step)
    autumn_fires = [r["fire_time"] for r in await runs_of(legato, s["id"])][2:]
    assert autumn_fires == [
        "2030-10-27T00:30:00.000Z",  # 02:30 CEST, the first pass of the repeated hour only
        "2030-10-28T01:30:00.000Z",
    ]


async def test_end_at_ends_the_schedule(legato: Legato, clock: Clock) -> None:
    s = await create(
        legato,
        name="brief",
        workflow="quick",
        every="1m",
        end_at=T0 + 120,
        catchup="1h",
        overlap="allow",
    )
    await tick(legato, T0 + 500)
    assert len(await runs_of(legato, s["id"])) == 2
    got = await legato.schedules.get(await admin(legato), "brief")
    assert got["state"] == "ended" and got["next_fire_times"] == []


async def test_a_workflow_declares_its_schedules(legato: Legato, clock: Clock) -> None:
    p = await admin(legato)
    source = (
        QUICK
        + """
schedules:
  - name: quick-hourly
    cron: "@hourly"
    timezone: America/New_York
    inputs: {day: "${{ schedule.date }}"}
"""
    )
    await apply(legato, source)
    [declared] = [s for s in await legato.schedules.list_all(p) if s["name"] == "quick-hourly"]
    assert declared["declared_by"] == "quick" and declared["cron"] == "@hourly"
    with pytest.raises(Conflict) as exc:
        await legato.schedules.update(p, "quick-hourly", {"cron": "* * * * *"})
    assert exc.value.code == "schedule_declared"
    paused = await legato.schedules.pause(p, "quick-hourly")
    assert paused["paused"] is True
    await apply(legato, source.replace('"@hourly"', '"15 * * * *"'))
    got = await legato.schedules.get(p, "quick-hourly")
    assert got["cron"] == "15 * * * *" and got["paused"] is True  # pausing is kept
    await apply(legato, QUICK)
    assert [s["name"] for s in await legato.schedules.list_all(p)] == []


async def test_a_fire_for_a_missing_workflow_is_recorded_as_failed(
    legato: Legato, clock: Clock
) -> None:
    s = await create(legato, name="orphan", workflow="quick", every="1m", version=1)
    from legato.store.tables import schedules

    await legato.db.write(
        lambda tx: tx.conn.execute(
            schedules.update().where(schedules.c.id == s["id"]).values(workflow_version=99)
        )
    )
    await tick(legato, T0 + 60)
    assert await fires(legato, "orphan") == [(iso(T0 + 60), "failed")]
    got = await legato.schedules.get(await admin(legato), "orphan")
    assert got["counts"]["failed"] == 1
    assert "version 99" in got["recent_fires"][0]["message"]


async def test_a_delayed_run_waits_and_can_be_canceled(legato: Legato, clock: Clock) -> None:
    p = await admin(legato)
    import time

    later = time.time() + 3600
    run, _ = await legato.runs.start(p, StartRun("quick", start_at=later))
    assert run["status"] == "QUEUED"
    got = await legato.runs.get(p, run["id"])
    until = iso(later)
    assert got["waiting_reason"] == {"reason": "scheduled", "until": until}
    assert got["start_at"] == until
    assert got["steps"][0]["waiting_reason"] == {"reason": "scheduled", "until": until}
    assert await tick(legato, later - 1) == 0
    canceled = await legato.runs.cancel(p, run["id"])
    assert canceled["status"] == "CANCELED" and canceled["waiting_reason"] is None
    assert await tick(legato, later + 1) == 0  # nothing left to release


async def test_a_delayed_run_is_released_at_its_time(legato: Legato, clock: Clock) -> None:
    p = await admin(legato)
    import time

    later = time.time() + 3600
    run, _ = await legato.runs.start(p, StartRun("quick", start_at=later))
    assert await tick(legato, later + 0.5) == 1
    got = await legato.runs.get(p, run["id"])
    assert got["waiting_reason"] is None
    assert got["steps"][0]["status"] == "READY"
    events = [e["type"] for e in await legato.runs.events(p, run["id"])]
    assert events[:2] == ["run.queued", "run.released"]


@pytest.fixture
def settings() -> Settings:
    return LOCAL_RECEIVERS  # the webhook below names a local address


async def test_fires_and_skips_are_webhook_events(legato: Legato, clock: Clock) -> None:
    from sqlalchemy import select

    from legato.store.outbox import claim_due
    from legato.store.tables import outbox

    p = await admin(legato)
    await legato.webhooks.create(p, "http://127.0.0.1:9/hook", ["schedule.*"])
    s = await create(legato, name="hooked", workflow="held", every="1m")
    await tick(legato, T0 + 60)
    await tick(legato, T0 + 120)  # the first run still waits for approval: skipped
    async with legato.db.read() as conn:
        rows = list(await conn.execute(select(outbox).order_by(outbox.c.id)))
    assert [r.event_type for r in rows] == ["schedule.fired", "schedule.skipped"]
    [run] = await runs_of(legato, s["id"])
    fired, skipped = rows[0].payload, rows[1].payload
    assert fired["run"]["id"] == run["id"] and rows[0].run_id == run["id"]
    assert fired["data"]["schedule"] == {
        "id": s["id"],
        "name": "hooked",
        "workflow": "held",
        "namespace": "default",
    }
    assert fired["data"]["fire_time"] == iso(T0 + 60)
    assert skipped["run"] is None and rows[1].run_id is None
    assert skipped["data"]["reason"] == "skipped_overlap"
    assert skipped["data"]["fire_time"] == iso(T0 + 120)
    # an event of no run is sent as any other
    claimed = await claim_due(legato.db, 10, 30.0)
    assert sorted(r.event_type for r in claimed) == ["schedule.fired", "schedule.skipped"]


async def test_a_full_queue_records_the_fire_as_failed(legato: Legato, clock: Clock) -> None:
    from legato.store.tables import namespaces

    p = await admin(legato)
    await legato.db.write(
        lambda tx: tx.conn.execute(
            namespaces.update().where(namespaces.c.id == p.namespace_id).values(max_queued_runs=1)
        )
    )
    s = await create(legato, name="crowded", workflow="quick", every="1m", overlap="allow")
    await tick(legato, T0 + 60)
    await tick(legato, T0 + 120)  # the first run is still queued: no room for a second
    assert len(await runs_of(legato, s["id"])) == 1
    got = await legato.schedules.get(p, "crowded")
    assert [f["outcome"] for f in got["recent_fires"]] == ["failed", "started"]
    assert "queued runs (limit 1)" in got["recent_fires"][0]["message"]
