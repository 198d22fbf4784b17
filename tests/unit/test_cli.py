from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

import legato
from legato.cli import common, run, views
from legato.cli.main import app
from legato.client import Client, Run

Handler = Callable[[httpx.Request], httpx.Response]


class FakeApi:
    """Routes requests to a handler and records them."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda r: httpx.Response(404)
        self.urls: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def client(self, url: str | None, api_key: str | None) -> Client:
        self.urls.append(url)
        return Client(
            url or "http://legato.test", api_key or "k", transport=httpx.MockTransport(self)
        )


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    fake = FakeApi()
    monkeypatch.setattr(common, "client_factory", fake.client)
    monkeypatch.setattr(run, "POLL_INTERVAL", 0.0)
    monkeypatch.delenv("LEGATO_URL", raising=False)
    monkeypatch.delenv("LEGATO_API_KEY", raising=False)
    yield fake


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def run_json(run_id: int = 1, status: str = "QUEUED", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": run_id,
        "uuid": "6b1f0c1e-0000-4000-8000-000000000001",
        "workflow": "hello",
        "workflow_version": 2,
        "status": status,
        "status_message": f"{status.title()}",
        "inputs": {},
        "outputs": {},
        "labels": {},
        "priority": 0,
        "progress": {"percent": 50.0, "finished_steps": 1, "total_steps": 2},
        "counts_by_status": {"SUCCEEDED": 1, "RUNNING": 1},
        "created_at": "2026-11-26T01:02:03.123Z",
        "started_at": "2026-11-26T01:02:04Z",
        "steps": [
            {
                "id": 10,
                "key": "greet",
                "name": "Greet",
                "rank": 0,
                "status": "SUCCEEDED",
                "attempt": 1,
                "max_attempts": 3,
                "duration_ms": 1500,
                "status_message": "done",
            },
            {
                "id": 11,
                "key": "shout",
                "name": "Shout",
                "rank": 1,
                "status": status if status != "QUEUED" else "PENDING",
                "attempt": 1,
                "max_attempts": 1,
                "status_message": "boom" if status == "FAILED" else None,
            },
        ],
    }
    data.update(extra)
    return data


def lifecycle(final: str, outputs: dict[str, Any] | None = None) -> Handler:
    polls = iter(["RUNNING", "RUNNING", final])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/api/v1/runs":
            return httpx.Response(201, json=run_json(12))
        assert request.url.path == "/api/v1/runs/12"
        status = next(polls)
        return httpx.Response(200, json=run_json(12, status, outputs=outputs or {}))

    return handler


def test_run_start_wait_exits_0_on_succeeded(api: FakeApi) -> None:
    api.handler = lifecycle("SUCCEEDED", {"greeting": "hello Ada"})
    result = invoke("run", "start", "hello", "-i", "name=Ada", "--wait")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output
    assert "greet" in result.output
    assert "hello Ada" in result.output
    assert json.loads(api.requests[0].content)["inputs"] == {"name": "Ada"}


def test_run_start_wait_exits_1_on_failed(api: FakeApi) -> None:
    api.handler = lifecycle("FAILED")
    result = invoke("run", "start", "hello", "--wait")
    assert result.exit_code == 1
    assert "FAILED" in result.output
    assert "boom" in result.output


def test_run_start_wait_json_prints_final_run(api: FakeApi) -> None:
    api.handler = lifecycle("CANCELED")
    result = invoke("--json", "run", "start", "hello", "--wait")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["status"] == "CANCELED"


def test_run_start_wait_live_view_on_a_terminal(
    api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(run, "out", lambda: Console(file=buffer, force_terminal=True, width=120))
    api.handler = lifecycle("SUCCEEDED")
    result = invoke("run", "start", "hello", "--wait")
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in buffer.getvalue()


def test_run_start_parses_inputs_labels_and_idempotency_key(api: FakeApi, tmp_path: Path) -> None:
    api.handler = lambda r: httpx.Response(201, json=run_json(12))
    inputs_file = tmp_path / "inputs.json"
    inputs_file.write_text('{"n": 1, "from_file": true}')
    result = invoke(
        "run",
        "start",
        "hello",
        "-i",
        "n=3",
        "-i",
        "s=abc",
        "-i",
        "l=[1,2]",
        "--input-file",
        str(inputs_file),
        "--label",
        "team=media",
        "--priority",
        "4",
        "--idempotency-key",
        "once",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(api.requests[0].content)
    assert body["inputs"] == {"n": 3, "s": "abc", "l": [1, 2], "from_file": True}
    assert body["labels"] == {"team": "media"}
    assert body["priority"] == 4
    assert api.requests[0].headers["Idempotency-Key"] == "once"
    assert "12" in result.output
    assert "6b1f0c1e-0000-4000-8000-000000000001" in result.output


def test_parse_inputs_exact() -> None:
    assert run.parse_inputs(["n=3", "s=abc", "l=[1,2]"]) == {"n": 3, "s": "abc", "l": [1, 2]}
    assert run.parse_inputs(['q="7"', "b=true", "e=", "eq=a=b"]) == {
        "q": "7",
        "b": True,
        "e": "",
        "eq": "a=b",
    }


def test_run_start_rejects_input_without_equals(api: FakeApi) -> None:
    result = invoke("run", "start", "hello", "-i", "oops")
    assert result.exit_code == 2
    assert not api.requests


def test_workflow_apply_prints_file_line_path_message_on_422(api: FakeApi, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nsteps: []\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - id: a\n    needs: [x]\n")
    problems = [
        {"path": "steps[0].needs[0]", "line": 4, "message": "unknown step 'x'", "code": "ref"},
        {"path": "steps[0].uses", "line": 3, "message": "field required", "code": "missing"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/good"):
            return httpx.Response(201, json={"name": "good", "version": 3})
        body = {
            "type": "https://legato.dev/problems/invalid_definition",
            "title": "Invalid definition",
            "status": 422,
            "detail": "The workflow definition is invalid",
            "code": "invalid_definition",
            "errors": problems,
        }
        return httpx.Response(422, json=body, headers={"Content-Type": "application/problem+json"})

    api.handler = handler
    result = invoke("workflow", "apply", str(good), str(bad))
    assert result.exit_code == 1
    assert "created" in result.output and "good v3" in result.output
    assert f"{bad}:4: steps[0].needs[0]: unknown step 'x'" in result.output
    assert f"{bad}:3: steps[0].uses: field required" in result.output
    assert api.requests[1].headers["Content-Type"] == "application/yaml"


def test_workflow_apply_reports_unreadable_yaml_locally(api: FakeApi, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nsteps: [\n")
    result = invoke("workflow", "apply", str(broken))
    assert result.exit_code == 1
    assert f"{broken}:" in result.output
    assert not api.requests


def test_connection_refused_names_url_and_hints_make_serve(api: FakeApi) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api.handler = handler
    result = invoke("--url", "http://127.0.0.1:9", "run", "status", "3")
    assert result.exit_code == 1
    assert "http://127.0.0.1:9" in result.output
    assert "make serve" in result.output
    assert "Traceback" not in result.output
    assert api.urls == ["http://127.0.0.1:9"]


def test_api_error_is_one_red_line_with_exit_1(api: FakeApi) -> None:
    body = {"status": 409, "code": "run_not_finished", "detail": "Run 3 is still RUNNING"}
    api.handler = lambda r: httpx.Response(409, json=body)
    result = invoke("run", "delete", "3")
    assert result.exit_code == 1
    assert "Run 3 is still RUNNING (409 run_not_finished)" in result.output


def test_url_and_key_from_environment(api: FakeApi) -> None:
    api.handler = lambda r: httpx.Response(200, json=run_json(3, "RUNNING"))
    env = {"LEGATO_URL": "http://env:1", "LEGATO_API_KEY": "lg_env"}
    result = invoke("run", "status", "3", env=env)
    assert result.exit_code == 0, result.output
    assert api.urls == ["http://env:1"]
    assert api.requests[0].headers["Authorization"] == "Bearer lg_env"


def test_run_status_shows_summary_counts_and_steps(api: FakeApi) -> None:
    api.handler = lambda r: httpx.Response(200, json=run_json(3, "RUNNING"))
    result = invoke("run", "status", "3")
    assert result.exit_code == 0, result.output
    for text in ["hello v2", "RUNNING", "50.0%", "1/2 steps", "greet", "1/3", "1.5s"]:
        assert text in result.output


def test_run_status_json(api: FakeApi) -> None:
    api.handler = lambda r: httpx.Response(200, json=run_json(3, "RUNNING", custom=1))
    result = invoke("--json", "run", "status", "3")
    assert json.loads(result.stdout)["custom"] == 1


def test_run_logs_prints_time_level_step_attempt_message(api: FakeApi) -> None:
    line = {
        "seq": 1,
        "time": "2026-11-26T01:02:03.123Z",
        "level": "INFO",
        "step": "greet",
        "attempt": 2,
        "message": "hello [world]",
    }
    api.handler = lambda r: httpx.Response(200, content=json.dumps(line) + "\n")
    result = invoke("run", "logs", "3", "--follow", "--step", "greet")
    assert result.exit_code == 0, result.output
    assert "2026-11-26T01:02:03.123Z INFO    [greet#2] hello [world]" in result.output
    assert api.requests[0].url.params["follow"] == "true"
    assert api.requests[0].url.params["step"] == "greet"


def test_run_list_cancel_and_workflow_list(api: FakeApi) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/runs":
            token = request.url.params.get("page_token")
            runs = [run_json(2 if token else 1, "SUCCEEDED")]
            return httpx.Response(
                200, json={"runs": runs, "next_page_token": None if token else "n"}
            )
        if request.url.path.endswith("/cancel"):
            return httpx.Response(200, json=run_json(1, "CANCELING"))
        return httpx.Response(200, json={"workflows": [{"name": "hello", "version": 2}]})

    api.handler = handler
    listed = invoke("--json", "run", "list", "--status", "SUCCEEDED", "--label", "a=b")
    assert [r["id"] for r in json.loads(listed.stdout)] == [1, 2]
    assert api.requests[0].url.params["label"] == "a=b"
    cancelled = invoke("run", "cancel", "1")
    assert "CANCELING" in cancelled.output
    workflows = invoke("workflow", "list")
    assert "hello" in workflows.output


def test_key_create_prints_key_once_on_stdout(api: FakeApi) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"name": "ci", "role": "admin", "namespace": "x"}
        body = {"id": 4, "name": "ci", "role": "admin", "namespace": "x", "key": "lg_secret"}
        return httpx.Response(201, json=body)

    api.handler = handler
    result = invoke("key", "create", "ci", "--role", "admin", "--namespace", "x")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "lg_secret"


def test_workflow_schema_prints_json_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("legato.model.definition")
    fake.json_schema = lambda: {"title": "Workflow"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "legato.model.definition", fake)
    result = invoke("workflow", "schema")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"title": "Workflow"}


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    fake = types.ModuleType("legato.runtime")
    for name in ["run_worker", "upgrade_database"]:
        setattr(fake, name, lambda _n=name, **kw: calls.append((_n, kw)))
    monkeypatch.setitem(sys.modules, "legato.runtime", fake)
    monkeypatch.setattr(legato, "runtime", fake, raising=False)
    fake_app = types.ModuleType("legato.asgi")
    for name in ["serve", "run_api"]:
        setattr(fake_app, name, lambda _n=name, **kw: calls.append((_n, kw)))
    monkeypatch.setitem(sys.modules, "legato.asgi", fake_app)
    monkeypatch.setattr(legato, "asgi", fake_app, raising=False)
    for var in ["LEGATO_DATABASE_URL", "LEGATO_HOST", "LEGATO_PORT"]:
        monkeypatch.delenv(var, raising=False)
    return calls


def test_server_commands_call_runtime(runtime: list[tuple[str, dict[str, Any]]]) -> None:
    env = {"LEGATO_DATABASE_URL": "postgresql://db/legato", "LEGATO_PORT": "9000"}
    assert invoke("serve", "--no-examples", "--workers", "2", env=env).exit_code == 0
    assert invoke("api", "--host", "0.0.0.0").exit_code == 0
    assert invoke("worker", "--concurrency", "8", "--name", "w1").exit_code == 0
    assert (
        invoke("worker", "--namespace", "a", "--namespace", "b", "--namespace", "a").exit_code == 0
    )
    assert invoke("db", "upgrade").exit_code == 0
    assert runtime == [
        (
            "serve",
            {
                "database_url": "postgresql://db/legato",
                "host": "127.0.0.1",
                "port": 9000,
                "workers": 2,
                "load_examples": False,
            },
        ),
        (
            "run_api",
            {
                "database_url": "sqlite:///./legato.db",
                "host": "0.0.0.0",
                "port": 8080,
                "processes": 1,
            },
        ),
        (
            "run_worker",
            {
                "database_url": "sqlite:///./legato.db",
                "concurrency": 8,
                "name": "w1",
                "namespaces": (),
            },
        ),
        (
            "run_worker",
            {
                "database_url": "sqlite:///./legato.db",
                "concurrency": 32,
                "name": None,
                "namespaces": ("a", "b"),
            },
        ),
        ("upgrade_database", {"database_url": "sqlite:///./legato.db"}),
    ]


def test_views_render_without_steps() -> None:
    console = Console(file=io.StringIO(), width=100)
    bare = Run.from_json({"id": 5, "workflow": "w", "status": "QUEUED"})
    console.print(views.run_summary(bare))
    console.print(views.live_view(bare))
    assert views.format_duration(65_000) == "1m05s"
    assert views.format_duration(3_720_000) == "1h02m"
    assert views.format_duration(None) == ""


def test_key_list_and_revoke(api: FakeApi) -> None:
    key = {"id": 3, "name": "ci", "role": "operator", "namespace": "default",
           "prefix": "lg_AbCdEfG", "created_at": "2026-11-26T01:02:03.123Z"}  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"keys": [key]})
        assert (request.method, request.url.path) == ("DELETE", "/api/v1/keys/3")
        return httpx.Response(204)

    api.handler = handler
    listed = invoke("key", "list")
    assert listed.exit_code == 0, listed.output
    assert "ci" in listed.output and "lg_AbCdEfG…" in listed.output
    as_json = invoke("--json", "key", "list")
    assert json.loads(as_json.stdout) == [key]
    revoked = invoke("key", "revoke", "3")
    assert revoked.exit_code == 0, revoked.output
    assert "Revoked key 3." in revoked.output
    assert invoke("key", "revoke", "x").exit_code == 2
