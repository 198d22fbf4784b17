"""Step code runs with only what it was given, on both stores: the worker checks each function
again before calling it, shell steps get a clean environment, and a worker bound to
namespaces runs their steps only."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from helpers import admin, apply, start, wait_for

from legato.asgi import create_app
from legato.engine.kinds.shell import INHERITED_VARIABLES
from legato.engine.worker import WorkerConfig
from legato.model.definition_loading import load_definition
from legato.model.starts import StartRun
from legato.model.states import RUN_TERMINAL
from legato.runtime import Legato
from legato.service.principal import Principal
from legato.store.workflows import insert_version
from tests.conftest import ADMIN_KEY, FAST, SETTINGS


async def _store_unchecked(legato: Legato, namespace_id: int, source: str) -> None:
    """A definition stored without the apply-time check (as if allowed when it was applied)."""
    definition = load_definition(source)
    await legato.db.write(
        lambda tx: insert_version(tx.conn, namespace_id, definition, source, time.time())
    )


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("os:getenv", "module 'os' is never allowed in steps"),
        (
            "tenant_steps:whoami",
            "module 'tenant_steps' is not a step module of this namespace (allowed: demo_steps, "
            "aspera_steps, encoding_com_steps, legato_examples); an installation admin can "
            "allow it",
        ),
        ("demo_steps:_private", "'demo_steps:_private' is private (its name starts with '_')"),
    ],
)
async def test_the_worker_refuses_a_function_the_namespace_cannot_call(
    engine: Legato, function: str, message: str
) -> None:
    p = await admin(engine)
    source = (
        f'name: sneaky\nsteps:\n  - {{id: s, uses: python, with: {{function: "{function}"}}}}\n'
    )
    await _store_unchecked(engine, p.namespace_id, source)
    run = await wait_for(engine, (await start(engine, "sneaky"))["id"])
    assert run["status"] == "FAILED"
    assert run["steps"][0]["error"] == {"code": "function_not_allowed", "message": message}


async def test_shell_steps_see_only_allow_listed_variables(
    engine: Legato, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_ADMIN_KEY", "lg_must_not_leak_0123456789")
    monkeypatch.setenv("LEGATO_DATABASE_URL", "postgresql://legato:must-not-leak@db/legato")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    monkeypatch.setenv("LC_TIME", "C")
    script = "import json, os; print(json.dumps({'env': dict(os.environ)}))"
    argv = json.dumps([sys.executable, "-c", script])
    await apply(
        engine,
        f"name: env\nsteps:\n  - id: show\n    uses: shell\n"
        f"    with: {{argv: {argv}, env: {{MINE: mine}}}}\n",
    )
    run = await wait_for(engine, (await start(engine, "env"))["id"])
    assert run["status"] == "SUCCEEDED", run
    env = run["steps"][0]["outputs"]["env"]
    own = {"MINE", "LEGATO_RUN_ID", "LEGATO_STEP", "LEGATO_ATTEMPT", "LEGATO_IDEMPOTENCY_KEY"}
    assert set(env) - own <= INHERITED_VARIABLES | {"LC_TIME", "LC_CTYPE"}
    assert env["MINE"] == "mine" and env["LC_TIME"] == "C" and env["LEGATO_STEP"] == "show"
    assert "must-not-leak" not in json.dumps(env)


async def _finished(legato: Legato, p: Principal, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while (run := await legato.runs.get(p, run_id))["status"] not in RUN_TERMINAL:
        assert time.monotonic() < deadline, run
        await legato.runs.wait_for_change(run_id, 0.2)
    return run


async def _namespace(legato: Legato, name: str) -> Principal:
    p = await admin(legato)
    await legato.tenancy.create_namespace(p, name, {})
    return Principal(await legato.tenancy.namespace_id(name), name, "admin")


HELLO = 'name: hello\nsteps:\n  - {id: hi, uses: python, with: {function: "demo_steps:noop"}}\n'


async def test_a_worker_bound_to_a_namespace_runs_only_its_steps(legato: Legato) -> None:
    tenant_a = await _namespace(legato, "tenant-a")
    tenant_b = await _namespace(legato, "tenant-b")
    for p in (tenant_a, tenant_b):
        await legato.workflows.apply(p, HELLO)
    # B's run is older and first in line: a worker that took any step would take it first
    b_run, _ = await legato.runs.start(tenant_b, StartRun("hello"))
    a_run, _ = await legato.runs.start(tenant_a, StartRun("hello"))
    legato.start_engine(config=WorkerConfig(**{**FAST.__dict__, "namespaces": ("tenant-a",)}))

    a_done = await _finished(legato, tenant_a, a_run["id"])
    assert [w["namespaces"] for w in await legato.workers()] == [["tenant-a"]]
    assert a_done["status"] == "SUCCEEDED"
    b_now = await legato.runs.get(tenant_b, b_run["id"])
    assert b_now["status"] == "QUEUED"
    assert b_now["steps"][0]["status"] == "READY"
    assert b_now["steps"][0]["attempt"] == 0

    # a second run of A's, started after, still goes to A's worker; B's waits for its own
    more, _ = await legato.runs.start(tenant_a, StartRun("hello"))
    assert (await _finished(legato, tenant_a, more["id"]))["status"] == "SUCCEEDED"
    assert (await legato.runs.get(tenant_b, b_run["id"]))["status"] == "QUEUED"

    legato.start_engine(config=WorkerConfig(**{**FAST.__dict__, "namespaces": ("tenant-b",)}))
    b_done = await _finished(legato, tenant_b, b_run["id"])
    assert b_done["status"] == "SUCCEEDED"


async def test_the_worker_of_serve_serves_the_namespaces_of_its_setting(database_url: str) -> None:
    settings = SETTINGS.model_copy(update={"worker_namespaces": ("tenant-a",)})
    legato = Legato(database_url, settings=settings)
    await legato.tenancy.bootstrap(ADMIN_KEY)
    tenant_a = await _namespace(legato, "tenant-a")
    tenant_b = await _namespace(legato, "tenant-b")
    for p in (tenant_a, tenant_b):
        await legato.workflows.apply(p, HELLO)
    b_run, _ = await legato.runs.start(tenant_b, StartRun("hello"))
    a_run, _ = await legato.runs.start(tenant_a, StartRun("hello"))
    app = create_app(legato, concurrency=4)
    async with app.router.lifespan_context(app):
        assert (await _finished(legato, tenant_a, a_run["id"]))["status"] == "SUCCEEDED"
        assert (await legato.runs.get(tenant_b, b_run["id"]))["status"] == "QUEUED"
