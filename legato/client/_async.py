"""The asyncio client: sends the calls described in ``_base``."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from legato.client import _base, _cursors
from legato.client._base import RunId
from legato.client._errors import connection_error, error_from_response
from legato.client._models import ApiKey, Event, LogLine, Run, RunPage, Step, Workflow
from legato.client._schedules import AsyncScheduleCalls

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(AsyncScheduleCalls):
    """Asyncio client of the Legato API (the same methods as ``Client``, awaited).

    ``base_url`` defaults to ``LEGATO_URL`` (else ``http://127.0.0.1:8080``); ``api_key`` to
    ``LEGATO_API_KEY``, else the ``.legato/admin.key`` file the server writes on first start.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = _base.resolve_base_url(base_url)
        self.api_key = _base.resolve_api_key(api_key)
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_base.default_headers(self.api_key),
            timeout=timeout,
            transport=transport,
        )

    # --- plumbing -----------------------------------------------------------------------------

    async def _send(self, call: _base.Call[Any]) -> httpx.Response:
        request = self._http.build_request(**call.request_args(self.timeout))
        return await self._http.send(request, stream=call.stream)

    async def _call(self, call: _base.Call[T]) -> T:
        try:
            response = await self._send(call)
        except httpx.TransportError as exc:
            raise connection_error(exc, self.base_url) from exc
        return call.handle(response)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def close(self) -> None:
        await self.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- API ----------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        return await self._call(_base.health())

    async def apply_workflow(
        self, name: str | None, text: str, content_type: str = "application/yaml"
    ) -> tuple[Workflow, bool]:
        """Create a new version of a workflow; returns it and whether it was new."""
        return await self._call(_base.apply_workflow(name, text, content_type))

    async def list_workflows(self) -> list[Workflow]:
        return await self._call(_base.list_workflows())

    async def get_workflow(self, name: str, version: int | None = None) -> Workflow:
        return await self._call(_base.get_workflow(name, version))

    async def start_run(
        self,
        workflow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        labels: Mapping[str, str] | None = None,
        priority: int = 0,
        external_id: str | None = None,
        notify_url: str | None = None,
        idempotency_key: str | None = None,
        start_at: datetime | str | None = None,
    ) -> Run:
        return await self._call(
            _base.start_run(
                workflow,
                inputs,
                version=version,
                labels=labels,
                priority=priority,
                external_id=external_id,
                notify_url=notify_url,
                idempotency_key=idempotency_key,
                start_at=start_at,
            )
        )

    async def get_run(self, run_id: RunId) -> Run:
        return await self._call(_base.get_run(run_id))

    async def list_runs(
        self,
        status: str | None = None,
        workflow: str | None = None,
        label: str | Mapping[str, str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> RunPage:
        return await self._call(
            _base.list_runs(
                status, workflow, label, created_after, created_before, page_size, page_token
            )
        )

    async def iter_runs(
        self,
        status: str | None = None,
        workflow: str | None = None,
        label: str | Mapping[str, str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> AsyncIterator[Run]:
        """Every matching run, following ``next_page_token`` page after page."""
        pager = _cursors.RunPager(
            {
                "status": status,
                "workflow": workflow,
                "label": label,
                "created_after": created_after,
                "created_before": created_before,
                "page_size": page_size,
            },
            page_token,
        )
        while not pager.done:
            for run in pager.advance(await self._call(pager.call())):
                yield run

    async def steps(self, run_id: RunId, parent: int | None = None) -> list[Step]:
        return await self._call(_base.steps(run_id, parent))

    async def logs(
        self, run_id: RunId, step: str | None = None, after: int | None = None
    ) -> list[LogLine]:
        return await self._call(_base.logs(run_id, step, after))

    async def follow_logs(
        self, run_id: RunId, step: str | None = None, after: int | None = None
    ) -> AsyncIterator[LogLine]:
        """Log lines as they come until the run ends; reconnects after a dropped stream."""
        follow = _cursors.LogFollow(run_id, step, after)
        while True:
            try:
                response = await self._send(follow.call())
                try:
                    if response.is_error:
                        await response.aread()
                        raise error_from_response(response)
                    follow.opened()
                    async for chunk in response.aiter_bytes():
                        for line in follow.feed(chunk):
                            yield line
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                await asyncio.sleep(follow.dropped(exc, self.base_url))
                continue
            for line in follow.finish():
                yield line
            return

    async def events(self, run_id: RunId) -> list[Event]:
        return await self._call(_base.events(run_id))

    async def cancel_run(self, run_id: RunId) -> Run:
        return await self._call(_base.cancel_run(run_id))

    async def delete_run(self, run_id: RunId) -> None:
        await self._call(_base.delete_run(run_id))

    async def create_key(
        self, name: str, role: str = "operator", namespace: str | None = None
    ) -> ApiKey:
        """Create an API key; its secret is in ``.key`` of this answer only."""
        return await self._call(_base.create_key(name, role, namespace))

    async def list_keys(self) -> list[ApiKey]:
        """The API keys the caller administers (never their secrets)."""
        return await self._call(_base.list_keys())

    async def revoke_key(self, key_id: int) -> None:
        """Revoke an API key: every server refuses it within a second."""
        await self._call(_base.revoke_key(key_id))

    async def wait(
        self,
        run_id: RunId,
        poll_interval: float = 0.2,
        timeout: float | None = None,
        on_update: Callable[[Run], Awaitable[None] | None] | None = None,
    ) -> Run:
        """Poll the run until it is terminal and return it; ``TimeoutError`` after ``timeout``."""
        waiter = _cursors.RunWaiter(run_id, poll_interval, timeout, time.monotonic)
        while True:
            run = await self.get_run(run_id)
            if on_update is not None:
                result = on_update(run)
                if inspect.isawaitable(result):
                    await result
            if waiter.finished(run):
                return run
            await asyncio.sleep(waiter.delay())
