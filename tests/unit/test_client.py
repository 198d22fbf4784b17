from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import legato.client
from legato.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    DefinitionTextError,
    LegatoConnectionError,
    LegatoError,
    NotFoundError,
    RateLimitedError,
    Run,
    ValidationError,
)

BASE = "http://legato.test"
Handler = Callable[[httpx.Request], httpx.Response]


def run_json(run_id: int = 1, status: str = "QUEUED", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": run_id,
        "uuid": f"00000000-0000-0000-0000-{run_id:012d}",
        "namespace": "default",
        "workflow": "hello",
        "workflow_version": 1,
        "status": status,
        "status_message": None,
        "inputs": {},
        "outputs": {},
        "labels": {},
        "priority": 0,
        "progress": {"percent": 0.0, "finished_steps": 0, "total_steps": 1},
        "counts_by_status": {"PENDING": 1},
        "error": None,
        "created_at": "2026-11-26T01:02:03.123Z",
        "started_at": None,
        "finished_at": None,
        "updated_at": "2026-11-26T01:02:03.123Z",
        "duration_ms": None,
    }
    data.update(extra)
    return data


def problem(status: int, code: str, detail: str, **extra: Any) -> httpx.Response:
    body = {
        "type": f"https://legato.dev/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return httpx.Response(
        status, content=json.dumps(body), headers={"Content-Type": "application/problem+json"}
    )


def make_client(handler: Handler, api_key: str | None = "k-123") -> Client:
    return Client(BASE, api_key, transport=httpx.MockTransport(handler))


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def log(seq: int, message: str = "") -> dict[str, Any]:
    return {
        "seq": seq,
        "time": "2026-11-26T01:02:03.000Z",
        "level": "INFO",
        "step": "greet",
        "attempt": 1,
        "message": message or f"line {seq}",
    }


class DroppedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Sends some bytes, then fails the way a dropped connection does."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection lost")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        raise httpx.ReadError("connection lost")


def test_exports_are_pinned() -> None:
    assert set(legato.client.__all__) == {
        "DEFAULT_URL",
        "TERMINAL_STATUSES",
        "ApiKey",
        "AsyncClient",
        "AuthenticationError",
        "Client",
        "ConflictError",
        "DefinitionTextError",
        "Event",
        "ForbiddenError",
        "LegatoConnectionError",
        "LegatoError",
        "LogLine",
        "NotFoundError",
        "Progress",
        "RateLimitedError",
        "Run",
        "RunPage",
        "Schedule",
        "ScheduleFire",
        "Step",
        "ValidationError",
        "Workflow",
    }
    for name in legato.client.__all__:
        assert hasattr(legato.client, name)


def test_start_run_sends_auth_header_idempotency_key_and_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=run_json(7, labels={"team": "a"}, extra_field="x"))

    with make_client(handler) as client:
        run = client.start_run(
            "hello",
            {"name": "Ada"},
            labels={"team": "a"},
            priority=5,
            idempotency_key="idem-1",
        )

    request = seen[0]
    assert request.method == "POST"
    assert request.url == f"{BASE}/api/v1/runs"
    assert request.headers["Authorization"] == "Bearer k-123"
    assert request.headers["Idempotency-Key"] == "idem-1"
    assert request.headers["User-Agent"].startswith("legato-client/")
    assert json.loads(request.content) == {
        "workflow": "hello",
        "inputs": {"name": "Ada"},
        "labels": {"team": "a"},
        "priority": 5,
    }
    assert run.id == 7
    assert run.status == "QUEUED"
    assert run.created_at == datetime(2026, 11, 26, 1, 2, 3, 123000, tzinfo=UTC)
    assert run.raw["extra_field"] == "x"
    assert run.steps is None


def test_no_idempotency_header_and_no_auth_without_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LEGATO_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=run_json())

    with make_client(handler, api_key=None) as client:
        client.start_run("hello")
    assert "Authorization" not in seen[0].headers
    assert "Idempotency-Key" not in seen[0].headers


def test_api_key_falls_back_to_env_then_admin_key_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEGATO_API_KEY", raising=False)
    monkeypatch.setenv("LEGATO_URL", "http://from-env:9000/")
    (tmp_path / ".legato").mkdir()
    (tmp_path / ".legato" / "admin.key").write_text("lg_file\n")
    with Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client:
        assert client.api_key == "lg_file"
        assert client.base_url == "http://from-env:9000"
    monkeypatch.setenv("LEGATO_API_KEY", "lg_env")
    with Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as client:
        assert client.api_key == "lg_env"


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "bad_request", ValidationError),
        (401, "unauthorized", AuthenticationError),
        (404, "not_found", NotFoundError),
        (409, "run_not_finished", ConflictError),
        (422, "validation_error", ValidationError),
        (429, "queue_limit", RateLimitedError),
        (500, "internal", LegatoError),
    ],
)
def test_problem_json_becomes_typed_error(status: int, code: str, cls: type[LegatoError]) -> None:
    with make_client(lambda r: problem(status, code, "it went wrong")) as client:
        with pytest.raises(cls) as info:
            client.get_run(3)
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.code == code
    assert info.value.detail == "it went wrong"
    assert info.value.errors == []


def test_invalid_definition_carries_problem_list() -> None:
    errors = [
        {"path": "steps[1].needs[0]", "line": 7, "message": "unknown step 'x'", "code": "ref"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return problem(422, "invalid_definition", "The definition is invalid", errors=errors)

    with make_client(handler) as client:
        with pytest.raises(ValidationError) as info:
            client.apply_workflow(None, "name: hello\nsteps: []\n")
    assert info.value.code == "invalid_definition"
    assert info.value.status == 422
    assert info.value.errors == errors


def test_rate_limited_reads_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        response = problem(429, "queue_limit", "queue full")
        response.headers["Retry-After"] = "3"
        return response

    with make_client(handler) as client, pytest.raises(RateLimitedError) as info:
        client.start_run("hello")
    assert info.value.retry_after == 3.0


def test_non_json_error_still_typed() -> None:
    with make_client(lambda r: httpx.Response(404, text="nope")) as client:
        with pytest.raises(NotFoundError) as info:
            client.get_workflow("missing")
    assert info.value.code == "not_found"
    assert info.value.detail == "nope"


def test_connection_refused_becomes_connection_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with make_client(handler) as client, pytest.raises(LegatoConnectionError) as info:
        client.health()
    assert info.value.url == BASE
    assert BASE in str(info.value)


def test_apply_workflow_reads_name_and_created_flag() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = 201 if len(seen) == 1 else 200
        return httpx.Response(
            status, json={"name": "hello", "version": 1, "created_at": "2026-11-26T00:00:00Z"}
        )

    text = "name: hello\nsteps:\n  - id: greet\n    uses: python\n"
    with make_client(handler) as client:
        first, created = client.apply_workflow(None, text)
        _, created_again = client.apply_workflow("hello", '{"name": "hello"}', "application/json")
    assert (first.name, first.version, created, created_again) == ("hello", 1, True, False)
    assert seen[0].method == "PUT"
    assert seen[0].url.path == "/api/v1/workflows/hello"
    assert seen[0].headers["Content-Type"] == "application/yaml"
    assert seen[0].content == text.encode()
    assert seen[1].headers["Content-Type"] == "application/json"


def test_apply_workflow_without_name_fails_before_sending() -> None:
    with make_client(lambda r: httpx.Response(500)) as client:
        with pytest.raises(DefinitionTextError) as info:
            client.apply_workflow(None, "steps: [\n")
        assert info.value.line is not None
        with pytest.raises(DefinitionTextError):
            client.apply_workflow(None, "description: no name\n")


def test_iter_runs_follows_page_tokens() -> None:
    pages = {
        None: ([1, 2], "t2"),
        "t2": ([3, 4], "t3"),
        "t3": ([5], None),
    }
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        ids, token = pages[request.url.params.get("page_token")]
        return httpx.Response(
            200, json={"runs": [run_json(i) for i in ids], "next_page_token": token}
        )

    with make_client(handler) as client:
        runs = list(client.iter_runs(status="RUNNING", label={"team": "a"}, page_size=2))

    assert [r.id for r in runs] == [1, 2, 3, 4, 5]
    assert [p.get("page_token") for p in seen] == [None, "t2", "t3"]
    assert all(p["status"] == "RUNNING" for p in seen)
    assert all(p.get_list("label") == ["team=a"] for p in seen)
    assert all(p["page_size"] == "2" for p in seen)


def test_list_runs_formats_times_and_filters() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"runs": [run_json(1)], "next_page_token": "abc"})

    with make_client(handler) as client:
        page = client.list_runs(
            workflow="hello",
            label="env=prod",
            created_after=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            created_before="2026-02-01T00:00:00Z",
        )
    params = seen[0].url.params
    assert params["workflow"] == "hello"
    assert params["label"] == "env=prod"
    assert params["created_after"] == "2026-01-02T03:04:05Z"
    assert params["created_before"] == "2026-02-01T00:00:00Z"
    assert page.next_page_token == "abc"
    assert [r.id for r in page.runs] == [1]


def test_follow_logs_reconnects_after_drop_and_resumes_from_last_seq() -> None:
    seen: list[httpx.QueryParams] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        if len(seen) == 1:
            # two whole lines, then half of a third, then the connection drops
            partial = json.dumps(log(3)).encode()[:10]
            return httpx.Response(200, stream=DroppedStream(ndjson(log(1), log(2)) + partial))
        # the server resends from after=2; a duplicate of 2 must be ignored
        return httpx.Response(200, content=ndjson(log(2), log(3), log(4)))

    with make_client(handler) as client:
        lines = list(client.follow_logs(12, step="greet"))

    assert [line.seq for line in lines] == [1, 2, 3, 4]
    assert lines[0].message == "line 1"
    assert lines[0].step == "greet"
    assert lines[0].time == datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    assert [dict(p) for p in seen] == [
        {"step": "greet", "follow": "true"},
        {"step": "greet", "after": "2", "follow": "true"},
    ]


def test_follow_logs_gives_up_when_the_server_never_answers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with make_client(handler) as client, pytest.raises(LegatoConnectionError):
        list(client.follow_logs(12))


def test_follow_logs_raises_typed_error() -> None:
    with make_client(lambda r: problem(404, "not_found", "no run 9")) as client:
        with pytest.raises(NotFoundError):
            list(client.follow_logs(9))


def test_logs_parses_ndjson() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["after"] == "1"
        assert "follow" not in request.url.params
        return httpx.Response(200, content=ndjson(log(2), log(3)) + b"\n")

    with make_client(handler) as client:
        assert [line.seq for line in client.logs(5, after=1)] == [2, 3]


def test_wait_polls_until_terminal() -> None:
    statuses = iter(["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED", "FAILED"])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/runs/4"
        return httpx.Response(200, json=run_json(4, next(statuses)))

    updates: list[str] = []
    with make_client(handler) as client:
        run = client.wait(4, poll_interval=0, on_update=lambda r: updates.append(r.status))
    assert run.status == "SUCCEEDED"
    assert run.is_terminal
    assert updates == ["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]


def test_wait_times_out() -> None:
    with make_client(lambda r: httpx.Response(200, json=run_json(4, "RUNNING"))) as client:
        with pytest.raises(TimeoutError):
            client.wait(4, poll_interval=0.01, timeout=0.05)


def test_get_run_parses_steps_and_progress() -> None:
    step = {
        "id": 34,
        "key": "greet",
        "name": "Greet",
        "kind": "python",
        "status": "RUNNING",
        "attempt": 1,
        "max_attempts": 3,
        "progress": 0.4,
        "needs": [],
        "started_at": "2026-11-26T01:02:04Z",
        "waiting_reason": None,
    }
    body = run_json(
        5,
        "RUNNING",
        progress={"percent": 33.3, "finished_steps": 1, "total_steps": 3},
        steps=[step],
    )
    with make_client(lambda r: httpx.Response(200, json=body)) as client:
        run = client.get_run("00000000-0000-0000-0000-000000000005")
    assert run.progress.percent == 33.3
    assert run.progress.total_steps == 3
    assert run.steps is not None
    assert run.steps[0].key == "greet"
    assert run.steps[0].max_attempts == 3
    assert run.steps[0].progress == 0.4
    assert "waiting_reason" in run.steps[0].raw


def test_cancel_delete_create_key_steps_events() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        path = request.url.path
        if path.endswith("/cancel"):
            return httpx.Response(200, json=run_json(3, "CANCELING"))
        if request.method == "DELETE":
            return httpx.Response(204)
        if path == "/api/v1/keys":
            assert json.loads(request.content) == {"name": "ci", "role": "viewer"}
            return httpx.Response(
                201, json={"id": 2, "name": "ci", "role": "viewer", "key": "lg_x"}
            )
        if path.endswith("/steps"):
            assert request.url.params["parent"] == "34"
            return httpx.Response(200, json={"steps": [{"id": 40, "key": "a", "status": "READY"}]})
        return httpx.Response(
            200, json={"events": [{"seq": 1, "type": "run.started", "status": "RUNNING"}]}
        )

    with make_client(handler) as client:
        assert client.cancel_run(3).status == "CANCELING"
        client.delete_run(3)
        assert client.create_key("ci", "viewer").key == "lg_x"
        assert [s.id for s in client.steps(3, parent=34)] == [40]
        assert client.events(3)[0].type == "run.started"
    assert seen == [
        ("POST", "/api/v1/runs/3/cancel"),
        ("DELETE", "/api/v1/runs/3"),
        ("POST", "/api/v1/keys"),
        ("GET", "/api/v1/runs/3/steps"),
        ("GET", "/api/v1/runs/3/events"),
    ]


async def test_async_client_shares_behaviour() -> None:
    seen: list[httpx.Request] = []
    statuses = iter(["RUNNING", "SUCCEEDED"])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if request.method == "POST":
            return httpx.Response(201, json=run_json(8))
        if path.endswith("/logs"):
            if request.url.params.get("after") is None:
                return httpx.Response(200, stream=DroppedStream(ndjson(log(1))))
            return httpx.Response(200, content=ndjson(log(2)))
        if path == "/api/v1/runs":
            token = request.url.params.get("page_token")
            return httpx.Response(
                200,
                json={"runs": [run_json(2 if token else 1)], "next_page_token": token or "p2"},
            )
        return httpx.Response(200, json=run_json(8, next(statuses)))

    async with AsyncClient(BASE, "k-async", transport=httpx.MockTransport(handler)) as client:
        run = await client.start_run("hello", idempotency_key="same")
        updates: list[Run] = []

        async def on_update(current: Run) -> None:
            updates.append(current)

        done = await client.wait(run.id, poll_interval=0, on_update=on_update)
        lines = [line.seq async for line in client.follow_logs(8)]
        ids = [r.id async for r in client.iter_runs()]

    assert seen[0].headers["Authorization"] == "Bearer k-async"
    assert seen[0].headers["Idempotency-Key"] == "same"
    assert done.status == "SUCCEEDED"
    assert [u.status for u in updates] == ["RUNNING", "SUCCEEDED"]
    assert lines == [1, 2]
    assert ids == [1, 2]


async def test_async_client_raises_typed_errors() -> None:
    transport = httpx.MockTransport(lambda r: problem(400, "bad_request", "bad page_size"))
    async with AsyncClient(BASE, "k", transport=transport) as client:
        with pytest.raises(ValidationError) as info:
            await client.list_runs(page_size=0)
    assert info.value.code == "bad_request"


def test_workflow_name_read_from_tab_indented_json() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"name": "tabbed", "version": 1})

    with make_client(handler) as client:
        client.apply_workflow(None, '{\n\t"name": "tabbed",\n\t"steps": []\n}', "application/json")
    assert seen == ["/api/v1/workflows/tabbed"]


def test_keys_are_listed_and_revoked() -> None:
    listed = {
        "keys": [
            {"id": 3, "name": "ci", "role": "operator", "namespace": "default",
             "prefix": "lg_AbCdEfG", "created_at": "2026-11-26T01:02:03.123Z"},
        ]
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v1/keys":
            return httpx.Response(200, json=listed)
        if request.method == "DELETE" and request.url.path == "/api/v1/keys/3":
            return httpx.Response(204)
        return problem(404, "key_not_found", "API key 4 does not exist")

    with make_client(handler) as client:
        [key] = client.list_keys()
        assert (key.id, key.name, key.prefix, key.key) == (3, "ci", "lg_AbCdEfG", None)
        assert key.created_at == datetime(2026, 11, 26, 1, 2, 3, 123000, tzinfo=UTC)
        assert client.revoke_key(3) is None
        with pytest.raises(NotFoundError):
            client.revoke_key(4)
