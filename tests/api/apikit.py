"""Helpers of the native API tests: problem checks, formats, and a kit of HTTP helpers bound
to a test's client."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

ADMIN_KEY = "lg_test_admin_key_0123456789"
YAML = {"Content-Type": "application/yaml"}
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"})
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(
    r: httpx.Response, status: int, code: str, title: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with the given status and stable code; answers its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["type"] == f"https://legato.dev/problems/{code}", body
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert isinstance(body["title"], str) and body["title"], body
    if title is not None:
        assert body["title"] == title, body
    assert isinstance(body["detail"], str) and body["detail"], body
    return body


class ApiKit:
    """HTTP helpers bound to one test's client."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api

    async def apply(self, source: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        name = re.search(r"^name:\s*(\S+)", source, re.M)
        assert name is not None, source
        r = await self.api.put(
            f"/api/v1/workflows/{name.group(1)}",
            content=source,
            headers={**YAML, **(headers or {})},
        )
        assert r.status_code in (200, 201), r.text
        return r.json()  # type: ignore[no-any-return]

    async def launch(
        self,
        workflow: str,
        *,
        key: str = ADMIN_KEY,
        labels: Mapping[str, str] | None = None,
        external_id: str | None = None,
        idempotency_key: str | None = None,
        **inputs: Any,
    ) -> dict[str, Any]:
        """``POST /api/v1/runs``; answers the new run."""
        body: dict[str, Any] = {"workflow": workflow, "inputs": inputs}
        if labels:
            body["labels"] = dict(labels)
        if external_id is not None:
            body["external_id"] = external_id
        headers = bearer(key)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        r = await self.api.post("/api/v1/runs", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def get_run(self, run_id: int | str, key: str = ADMIN_KEY) -> dict[str, Any]:
        r = await self.api.get(f"/api/v1/runs/{run_id}", headers=bearer(key))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def wait(
        self,
        run_id: int | str,
        statuses: frozenset[str] = TERMINAL,
        timeout: float = 20.0,
        key: str = ADMIN_KEY,
    ) -> dict[str, Any]:
        """Poll ``GET /api/v1/runs/{id}`` until the run is in one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            run = await self.get_run(run_id, key)
            if run["status"] in statuses:
                return run
            assert time.monotonic() < deadline, f"run {run_id} still {run['status']}: {run}"
            await asyncio.sleep(0.03)

    async def wait_step(
        self, run_id: int, step: str, status: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.api.get(f"/api/v1/runs/{run_id}/steps/{step}")
            assert r.status_code == 200, r.text
            if r.json()["status"] == status:
                return r.json()  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, r.json()
            await asyncio.sleep(0.03)

    async def new_key(
        self, role: str, namespace: str | None = None, name: str = "test key"
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "role": role}
        if namespace is not None:
            body["namespace"] = namespace
        r = await self.api.post("/api/v1/keys", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]
