"""Schemathesis over ``/openapi.json`` of the real app behind a real server (SQLite): no
answer is a 5xx, and every answer matches what the description says of it.

Bounded and seeded: a fixed number of examples per operation, derandomized, without
Hypothesis' example database, so that every run sends the same requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from legato.asgi import create_app
from legato.runtime import Legato
from legato.settings import Settings
from legato.store.migrate import upgrade

ADMIN_KEY = "lg_test_admin_key_0123456789"
#: per operation and per mode (data that fits the description, and data that does not)
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(autouse=True)
def settle() -> None:
    """Nothing to settle: the fuzzed server is this module's own."""


@pytest.fixture(scope="module")
def server_url(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[str]:
    """``legato serve`` in a thread: migrated SQLite, the examples loaded, no workers."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'legato.db'}"
    upgrade(url)
    monkeypatch_module.setenv("LEGATO_ADMIN_KEY", ADMIN_KEY)
    monkeypatch_module.chdir(tmp_path_factory.mktemp("cwd"))
    settings = Settings(admin_key=ADMIN_KEY, step_modules=("legato_examples",))
    app = create_app(Legato(url, settings=settings), examples=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the fuzzed server did not start"
        assert time.monotonic() < deadline, "the fuzzed server did not start in time"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.timeout(900)  # about two minutes alone; more on a busy machine
def test_every_operation_answers_as_described(server_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation.as_strategy(generation_mode=mode))
            except Unsatisfiable:
                continue  # nothing it takes can be made invalid (plain strings, no body)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode}): {exc!r}"[:3000])
    assert not failures, "\n\n".join(failures)


def _fuzz(cases: SearchStrategy[schemathesis.Case]) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],  # report what fails; no shrinking
    )
    @given(case=cases)
    def answers_as_described(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            timeout=30,
        )

    answers_as_described()


def test_the_description_has_no_unused_validation_schema(server_url: str) -> None:
    spec = httpx.get(f"{server_url}/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["Problem"]["required"] == [
        "type", "title", "status", "detail", "code"
    ]  # fmt: skip
