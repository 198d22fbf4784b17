"""Pages of runs on both stores: the raw read gives what SQLAlchemy gives, one statement a
page, and the rendered page is the native answer re-rendering only the runs that changed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from helpers import admin, apply, wait_for
from statements import counting

import legato.service.run_lists as service_lists
from legato.http.responses import render_json
from legato.model.filters import RunFilter
from legato.model.starts import StartRun
from legato.runtime import Legato
from legato.service.run_lists import Page, SummaryBodies
from legato.store import run_lists

ONE = """
name: one
steps:
  - id: a
    uses: python
    with: {function: "demo_steps:noop"}
"""
FAILING = """
name: failing
steps:
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
"""


async def _runs(legato: Legato) -> list[dict[str, Any]]:
    p = await admin(legato)
    await apply(legato, ONE)
    await apply(legato, FAILING)
    started = []
    for i, (wf, labels) in enumerate(
        [
            ("one", {"team": "a", "env": "prod"}),
            ("failing", {"team": "b"}),
            ("one", {"team": "a", "env": "dev"}),
            ("failing", {}),
        ]
    ):
        view, _ = await legato.runs.start(
            p, StartRun(wf, labels=labels, requestor=f"r{i % 2}", priority=i)
        )
        started.append(view)
    return [await wait_for(legato, run["id"]) for run in started]


def _filters(namespace_id: int) -> list[RunFilter]:
    ns = namespace_id
    return [
        RunFilter(ns),
        RunFilter(ns, statuses=["FAILED"]),
        RunFilter(ns, statuses=["FAILED", "SUCCEEDED"], workflow="one"),
        RunFilter(ns, requestor="r1"),
        RunFilter(ns, labels={"team": "a"}),
        RunFilter(ns, labels={"team": "a", "env": "dev"}),
        RunFilter(ns, created_after=0.0, created_before=4e9),
        RunFilter(ns, top_level_only=True),
        RunFilter(ns, parent_run_id=1),
        RunFilter(ns, schedule_id=1, fire_time=0.0),
        RunFilter(ns + 1000),
    ]


async def test_the_raw_read_gives_what_sqlalchemy_gives(engine: Legato) -> None:
    legato = engine
    await _runs(legato)
    p = await admin(legato)
    seen = 0
    for flt in _filters(p.namespace_id):
        every = await run_lists.list_rows(legato.db, flt, limit=50, after=None)
        marks = [(run_lists.created_at(r), r[run_lists.ID]) for r in every[1:2]]
        for after in (None, *marks):
            rows = await run_lists.list_rows(legato.db, flt, limit=3, after=after)
            async with legato.db.read() as conn:
                typed = await run_lists.list_runs(conn, flt, limit=3, after=after)
            assert [run_lists.summary(r) for r in rows] == typed, flt
            seen += len(rows)
    assert seen > 0
    failed = await run_lists.list_rows(
        legato.db, RunFilter(p.namespace_id, statuses=["FAILED"]), limit=1, after=None
    )
    summary = run_lists.summary(failed[0])
    assert isinstance(summary.error, dict) and summary.labels == {}


async def test_a_page_is_one_statement_and_renders_what_the_route_would(
    engine: Legato,
) -> None:
    legato = engine
    made = await _runs(legato)
    p = await admin(legato)
    flt = RunFilter(p.namespace_id)
    with counting(legato.db) as listed:
        body = await legato.runs.list_page(p, flt, 3, None, render_json)
    assert listed.count == 1, listed
    native = await legato.runs.list_runs(p, flt, 3, None)
    assert body == render_json(native)
    assert [r["id"] for r in native["runs"]] == [r["id"] for r in reversed(made)][:3]
    token = native["next_page_token"]
    assert token is not None
    rest = await legato.runs.list_page(p, flt, 3, token, render_json)
    assert rest == render_json(await legato.runs.list_runs(p, flt, 3, token))
    assert orjson.loads(rest)["next_page_token"] is None


async def test_a_page_renders_only_the_runs_that_changed(
    engine: Legato, monkeypatch: pytest.MonkeyPatch
) -> None:
    legato = engine
    made = await _runs(legato)
    p = await admin(legato)
    flt = RunFilter(p.namespace_id)
    await legato.runs.list_page(p, flt, 50, None, render_json)
    rendered: list[int] = []
    view = service_lists.run_view

    def counted(run: Any, namespace: str, *args: Any, **kw: Any) -> dict[str, Any]:
        rendered.append(run.id)
        return view(run, namespace, *args, **kw)

    monkeypatch.setattr(service_lists, "run_view", counted)
    again = await legato.runs.list_page(p, flt, 50, None, render_json)
    assert rendered == []
    # one run changes (a new run appears, an old one is deleted): only the new one renders
    fresh, _ = await legato.runs.start(p, StartRun("one"))
    await wait_for(legato, fresh["id"])
    await legato.runs.delete(p, made[0]["id"])
    changed = await legato.runs.list_page(p, flt, 50, None, render_json)
    assert rendered == [fresh["id"]]
    monkeypatch.undo()
    assert changed == render_json(await legato.runs.list_runs(p, flt, 50, None))
    assert changed != again


def _row(**values: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = {
        "id": 7,
        "uuid": "u-7",
        "namespace_id": 1,
        "workflow_name": "wf",
        "workflow_version": 1,
        "status": "FAILED",
        "status_message": "",
        "labels": '{"team": "a"}',
        "priority": 0,
        "operation_type": "wf",
        "requestor": None,
        "external_id": None,
        "parent_run_id": None,
        "parent_step_id": None,
        "total_steps": 1,
        "finished_steps": 1,
        "error": '{"code": "step_failed"}',
        "created_at": 1.0,
        "started_at": 1.5,
        "finished_at": 2.0,
        "updated_at": 2.0,
        "change_seq": 3,
        "start_at": None,
        "held_until": None,
        "schedule_id": None,
        "fire_time": None,
    }
    base.update(values)
    return tuple(base[name] for name in run_lists.SUMMARY_COLUMNS)


def test_a_summary_is_kept_by_run_version_and_namespace() -> None:
    bodies = SummaryBodies(capacity=2)
    page = Page([_row()], "tok")
    first = bodies.render(page, "default", render_json)
    assert first == render_json(page.native("default"))
    # the same id at another version, UUID or namespace is rendered anew
    for changed, namespace in (
        (_row(change_seq=4, status_message="new"), "default"),
        (_row(uuid="u-other", status_message="reused id"), "default"),
        (_row(), "team-b"),
    ):
        other = Page([changed], None)
        assert bodies.render(other, namespace, render_json) == render_json(other.native(namespace))
    # the oldest kept run goes first
    for run_id in (8, 9, 10):
        bodies.render(Page([_row(id=run_id)], None), "default", render_json)
    assert len(bodies._kept) == 2


def test_what_orjson_cannot_write_is_written_by_the_face_for_the_whole_page() -> None:
    page = Page([_row(id=1), _row(id=2, status_message="lone \ud800 surrogate")], None)
    body = SummaryBodies().render(page, "default", render_json)
    assert body == render_json(page.native("default"))
    assert b"\\ud800" in body
