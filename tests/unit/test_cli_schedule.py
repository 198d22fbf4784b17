"""``legato schedule …`` and ``legato run start --start-at``: the requests they send and what
they print, against a fake API."""

from __future__ import annotations

import json
from typing import Any

import httpx
from test_cli import FakeApi, api, invoke, run_json  # noqa: F401

SCHEDULE = {
    "id": 3,
    "name": "nightly",
    "workflow": "report",
    "version": None,
    "cron": "30 2 * * *",
    "every": None,
    "timezone": "Europe/Berlin",
    "overlap": "skip",
    "catchup": 3600.0,
    "catchup_policy": "all",
    "state": "active",
    "paused": False,
    "note": None,
    "next_fire_times": ["2030-01-01T01:30:00.000Z", "2030-01-02T01:30:00.000Z"],
    "recent_fires": [
        {
            "fire_time": "2029-12-31T01:30:00.000Z",
            "outcome": "started",
            "run_id": 41,
            "message": None,
            "manual": False,
        },
        {
            "fire_time": "2029-12-30T01:30:00.000Z",
            "outcome": "skipped_overlap",
            "run_id": None,
            "message": "the previous run is still going",
            "manual": False,
        },
    ],
    "counts": {"started": 1, "skipped_overlap": 1, "missed": 0, "failed": 0},
    "inputs": {"day": "${{ schedule.date }}"},
    "labels": {},
}


def answer(fake: FakeApi, status: int, body: Any) -> None:
    fake.handler = lambda request: httpx.Response(status, json=body)


def test_create_sends_the_schedule_and_shows_it(api: FakeApi) -> None:  # noqa: F811
    answer(api, 201, SCHEDULE)
    result = invoke(
        "schedule", "create", "nightly", "-w", "report", "--cron", "30 2 * * *",
        "--tz", "Europe/Berlin", "-i", "day=${{ schedule.date }}", "-i", "n=3",
        "--overlap", "buffer_one", "--catchup", "1h", "--catchup-policy", "latest",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [request] = api.requests
    assert (request.method, request.url.path) == ("POST", "/api/v1/schedules")
    body = json.loads(request.content)
    assert body["name"] == "nightly" and body["workflow"] == "report"
    assert body["cron"] == "30 2 * * *" and body["timezone"] == "Europe/Berlin"
    assert body["inputs"] == {"day": "${{ schedule.date }}", "n": 3}
    assert (body["overlap"], body["catchup"], body["catchup_policy"]) == (
        "buffer_one",
        "1h",
        "latest",
    )
    assert "every" not in body
    assert "2030-01-01T01:30:00Z" in result.output
    assert "skipped_overlap" in result.output and "41" in result.output


def test_list_get_next_pause_resume_trigger_delete(api: FakeApi) -> None:  # noqa: F811
    answer(api, 200, {"schedules": [SCHEDULE]})
    result = invoke("schedule", "list")
    assert result.exit_code == 0 and "nightly" in result.output
    answer(api, 200, SCHEDULE)
    assert "latest fires" in invoke("schedule", "get", "nightly").output
    answer(api, 200, {"next_fire_times": SCHEDULE["next_fire_times"]})
    result = invoke("schedule", "next", "nightly", "-n", "2")
    assert result.output.split() == ["2030-01-01T01:30:00Z", "2030-01-02T01:30:00Z"]
    assert api.requests[-1].url.params["count"] == "2"
    answer(api, 200, {**SCHEDULE, "paused": True, "state": "paused"})
    assert invoke("schedule", "pause", "nightly", "--note", "holiday").exit_code == 0
    assert json.loads(api.requests[-1].content) == {"note": "holiday"}
    assert api.requests[-1].url.path == "/api/v1/schedules/nightly/pause"
    answer(api, 200, SCHEDULE)
    assert "next fire 2030-01-01T01:30:00Z" in invoke("schedule", "resume", "nightly").output
    answer(api, 201, {"fire_time": "2030-01-01T00:00:00.000Z", "outcome": "started",
                      "run_id": 7, "message": None, "manual": True})  # fmt: skip
    assert "Started run 7" in invoke("schedule", "trigger", "nightly").output
    api.handler = lambda request: httpx.Response(204)
    assert invoke("schedule", "delete", "nightly").exit_code == 0
    assert (api.requests[-1].method, api.requests[-1].url.path) == (
        "DELETE",
        "/api/v1/schedules/nightly",
    )


def test_a_refused_schedule_shows_the_field(api: FakeApi) -> None:  # noqa: F811
    answer(
        api,
        422,
        {
            "type": "about:blank",
            "title": "Invalid input",
            "status": 422,
            "code": "invalid_schedule",
            "detail": "timezone: unknown time zone 'Mars/X'",
            "errors": [{"path": "timezone", "message": "unknown time zone 'Mars/X'"}],
        },
    )
    result = invoke("schedule", "create", "x", "-w", "report", "--every", "1m", "--tz", "Mars/X")
    assert result.exit_code != 0
    assert "timezone" in result.output


def test_run_start_at(api: FakeApi) -> None:  # noqa: F811
    answer(api, 201, run_json(5))
    result = invoke("run", "start", "hello", "--start-at", "2030-01-01T09:00:00Z")
    assert result.exit_code == 0, result.output
    assert json.loads(api.requests[0].content)["start_at"] == "2030-01-01T09:00:00Z"
