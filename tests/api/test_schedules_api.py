"""``/api/v1/schedules`` and delayed starts through HTTP, on both stores, in real time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from apikit import ADMIN_KEY, ApiKit, assert_problem

from legato.client import AsyncClient

QUICK = """\
name: quick
inputs:
  tag: {type: string, default: none}
steps:
  - id: only
    uses: sleep
    with: {duration: 1ms}
"""


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
async def quick(api: httpx.AsyncClient) -> None:
    r = await api.put(
        "/api/v1/workflows/quick", content=QUICK, headers={"Content-Type": "application/yaml"}
    )
    assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "@fortnightly"}, "cron"),
        ({"every": "15m", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"every": "1m", "start_at": "2030-01-02T00:00:00Z", "end_at": "2030-01-01"}, "end_at"),
        ({"every": "0s"}, "every"),
        ({"every": "soon"}, "every"),
        ({}, "cron"),  # neither cron nor every
        ({"cron": "* * * * *", "overlap": "sometimes"}, "overlap"),
        ({"cron": "* * * * *", "catchup_policy": "most"}, "catchup_policy"),
        ({"cron": "* * * * *", "workflow": "nope"}, "workflow"),
        ({"cron": "* * * * *", "inputs": {"tag": 5}}, "inputs.tag"),
        ({"cron": "* * * * *", "name": "123"}, "name"),
    ],
)
async def test_a_bad_schedule_is_422_naming_the_field(
    api: httpx.AsyncClient, quick: None, body: dict[str, Any], path: str
) -> None:
    r = await api.post("/api/v1/schedules", json={"name": "bad", "workflow": "quick", **body})
    problem = assert_problem(r, 422, "invalid_schedule")
    assert path in [e["path"] for e in problem["errors"]], problem


async def test_create_read_update_pause_trigger_delete(
    api: httpx.AsyncClient, kit: ApiKit, quick: None
) -> None:
    r = await api.post(
        "/api/v1/schedules",
        json={
            "name": "nightly",
            "workflow": "quick",
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "inputs": {"tag": "${{ schedule.date }}"},
            "catchup": "1h",
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["Location"] == f"/api/v1/schedules/{created['id']}"
    assert created["state"] == "active" and created["overlap"] == "skip"
    assert created["catchup"] == 3600.0 and created["catchup_policy"] == "all"
    first = created["next_fire_times"][0]
    assert first.endswith(("T01:30:00.000Z", "T00:30:00.000Z"))  # 02:30 in Berlin
    assert (
        await api.post(
            "/api/v1/schedules", json={"name": "nightly", "workflow": "quick", "every": 60}
        )
    ).status_code == 409
    r = await api.get("/api/v1/schedules/nightly/next", params={"count": 3})
    assert r.json()["next_fire_times"] == created["next_fire_times"][:3]
    r = await api.patch("/api/v1/schedules/nightly", json={"cron": "0 3 * * *"})
    assert r.status_code == 200, r.text
    assert r.json()["cron"] == "0 3 * * *" and r.json()["timezone"] == "Europe/Berlin"
    r = await api.post("/api/v1/schedules/nightly/pause", json={"note": "holiday"})
    assert r.json()["state"] == "paused" and r.json()["note"] == "holiday"
    r = await api.post("/api/v1/schedules/nightly/trigger")  # fires while paused too
    assert r.status_code == 201, r.text
    fire = r.json()
    assert fire["outcome"] == "started" and fire["manual"] is True
    run = await kit.wait(fire["run_id"])
    assert run["schedule_id"] == created["id"] and run["fire_time"] == fire["fire_time"]
    berlin = datetime.fromtimestamp(_ts(fire["fire_time"]), ZoneInfo("Europe/Berlin"))
    assert run["inputs"]["tag"] == berlin.date().isoformat()
    r = await api.get("/api/v1/runs", params={"schedule": created["id"]})
    assert [x["id"] for x in r.json()["runs"]] == [fire["run_id"]]
    r = await api.get(
        "/api/v1/runs", params={"schedule": created["id"], "fire_time": fire["fire_time"]}
    )
    assert len(r.json()["runs"]) == 1
    r = await api.get("/api/v1/schedules/nightly/fires")
    assert [(f["outcome"], f["run_id"]) for f in r.json()["fires"]] == [("started", fire["run_id"])]
    r = await api.post("/api/v1/schedules/nightly/resume")
    assert r.json()["state"] == "active" and r.json()["counts"]["started"] == 1
    listed = (await api.get("/api/v1/schedules")).json()["schedules"]
    assert [s["name"] for s in listed] == ["nightly"]
    assert (await api.delete(f"/api/v1/schedules/{created['id']}")).status_code == 204
    assert_problem(await api.get("/api/v1/schedules/nightly"), 404, "schedule_not_found")


async def test_a_schedule_fires_on_time_in_real_time(
    api: httpx.AsyncClient, kit: ApiKit, quick: None
) -> None:
    r = await api.post(
        "/api/v1/schedules",
        json={"name": "second", "workflow": "quick", "cron": "* * * * * *", "overlap": "allow"},
    )
    assert r.status_code == 201, r.text
    schedule_id = r.json()["id"]
    deadline = time.monotonic() + 15
    runs: list[dict[str, Any]] = []
    while len(runs) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.3)
        runs = (await api.get("/api/v1/runs", params={"schedule": schedule_id})).json()["runs"]
    await api.post("/api/v1/schedules/second/pause")
    runs = (await api.get("/api/v1/runs", params={"schedule": schedule_id})).json()["runs"]
    assert len(runs) >= 3
    fire_times = sorted(_ts(r["fire_time"]) for r in runs)
    assert len(set(fire_times)) == len(fire_times)
    assert all(t == int(t) for t in fire_times)  # whole seconds, as the cron says
    assert fire_times == [fire_times[0] + i for i in range(len(fire_times))]  # none skipped
    for run in runs:
        assert _ts(run["created_at"]) >= _ts(run["fire_time"])  # never early


async def test_a_delayed_start_waits_then_runs(
    api: httpx.AsyncClient, kit: ApiKit, quick: None
) -> None:
    start_at = time.time() + 1.5
    iso = datetime.fromtimestamp(start_at, UTC).isoformat()
    r = await api.post("/api/v1/runs", json={"workflow": "quick", "start_at": iso})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "QUEUED"
    assert run["waiting_reason"]["reason"] == "scheduled"
    assert abs(_ts(run["waiting_reason"]["until"]) - start_at) < 0.002
    steps = (await api.get(f"/api/v1/runs/{run['id']}")).json()["steps"]
    assert steps[0]["waiting_reason"]["reason"] == "scheduled"
    done = await kit.wait(run["id"])
    assert done["status"] == "SUCCEEDED", done
    assert _ts(done["started_at"]) >= start_at - 0.001
    assert done["waiting_reason"] is None


async def test_a_delayed_start_can_be_canceled(
    api: httpx.AsyncClient, kit: ApiKit, quick: None
) -> None:
    r = await api.post("/api/v1/runs", json={"workflow": "quick", "start_at": time.time() + 60})
    run = r.json()
    r = await api.post(f"/api/v1/runs/{run['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELED"
    assert r.json()["waiting_reason"] is None
    assert [s["started_at"] for s in r.json()["steps"]] == [None]  # nothing ran


async def test_a_bad_start_at_is_422(api: httpx.AsyncClient, quick: None) -> None:
    r = await api.post("/api/v1/runs", json={"workflow": "quick", "start_at": "next tuesday"})
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["path"] == "start_at"


async def test_the_async_client_covers_schedules(live_url: str, quick: None) -> None:
    async with AsyncClient(live_url, ADMIN_KEY) as client:
        s = await client.create_schedule(
            name="hourly", workflow="quick", cron="@hourly", timezone="Asia/Kolkata"
        )
        assert s.cron == "@hourly" and s.state == "active"
        assert [t.minute for t in s.next_fire_times] == [30] * len(s.next_fire_times)  # +05:30
        assert len(await client.next_fire_times("hourly", 4)) == 4
        paused = await client.pause_schedule("hourly", "quiet")
        assert paused.paused and paused.raw["note"] == "quiet"
        fire = await client.trigger_schedule("hourly")
        assert fire.outcome == "started" and fire.run_id is not None
        assert [f.run_id for f in await client.schedule_fires("hourly")] == [fire.run_id]
        updated = await client.update_schedule("hourly", overlap="allow")
        assert updated.overlap == "allow"
        assert [x.name for x in await client.list_schedules()] == ["hourly"]
        await client.resume_schedule("hourly")
        await client.delete_schedule("hourly")
        assert await client.list_schedules() == []
