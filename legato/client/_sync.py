"""The blocking client: sends the calls described in ``_base``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from legato.client import _base, _cursors
from legato.client._base import RunId
from legato.client._errors import connection_error, error_from_response
from legato.client._models import ApiKey, Event, LogLine, Run, RunPage, Step, Workflow
from legato.client._schedules import ScheduleCalls

__all__ = ["Client"]

T = TypeVar("T")


class Client(ScheduleCalls):
    """Blocking client of the Legato API.

    ``base_url`` defaults to ``LEGATO_URL`` (else ``http://127.0.0.1:8080``); ``api_key`` to
    ``LEGATO_API_KEY``, else the ``.legato/admin.key`` file the server writes on first start.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _base.resolve_base_url(base_url)
        self.api_key = _base.resolve_api_key(api_key)
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_base.default_headers(self.api_key),
            timeout=timeout,
            transport=transport,
        )

    # --- plumbing -----------------------------------------------------------------------------

    def _send(self, call: _base.Call[Any]) -> httpx.Response:
        request = self._http.build_request(**call.request_args(self.timeout))
        return self._http.send(request, stream=call.stream)

    def _call(self, call: _base.Call[T]) -> T:
        try:
            response = self._send(call)
        except httpx.TransportError as exc:
            raise connection_error(exc, self.base_url) from exc
        return call.handle(response)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- API ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call(_base.health())

    def apply_workflow(
        self, name: str | None, text: str, content_type: str = "application/yaml"
    ) -> tuple[Workflow, bool]:
        """Create a new version of a workflow; returns it and whether it was new."""
        return self._call(_base.apply_workflow(name, text, content_type))

    def list_workflows(self) -> list[Workflow]:
        return self._call(_base.list_workflows())

    def get_workflow(self, name: str, version: int | None = None) -> Workflow:
        return self._call(_base.get_workflow(name, version))

    def start_run(
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
        return self._call(
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

    def get_run(self, run_id: RunId) -> Run:
        return self._call(_base.get_run(run_id))

    def list_runs(
        self,
        status: str | None = None,
        workflow: str | None = None,
        label: str | Mapping[str, str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> RunPage:
        return self._call(
            _base.list_runs(
                status, workflow, label, created_after, created_before, page_size, page_token
            )
        )

    def iter_runs(
        self,
        status: str | None = None,
        workflow: str | None = None,
        label: str | Mapping[str, str] | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> Iterator[Run]:
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
            yield from pager.advance(self._call(pager.call()))

    def steps(self, run_id: RunId, parent: int | None = None) -> list[Step]:
        return self._call(_base.steps(run_id, parent))

    def logs(
        self, run_id: RunId, step: str | None = None, after: int | None = None
    ) -> list[LogLine]:
        return self._call(_base.logs(run_id, step, after))

    def follow_logs(
        self, run_id: RunId, step: str | None = None, after: int | None = None
    ) -> Iterator[LogLine]:
        """Log lines as they come until the run ends; reconnects after a dropped stream."""
        follow = _cursors.LogFollow(run_id, step, after)
        while True:
            try:
                response = self._send(follow.call())
                try:
                    if response.is_error:
                        response.read()
                        raise error_from_response(response)
                    follow.opened()
                    for chunk in response.iter_bytes():
                        yield from follow.feed(chunk)
                finally:
                    response.close()
            except httpx.TransportError as exc:
                time.sleep(follow.dropped(exc, self.base_url))
                continue
            yield from follow.finish()
            return

    def events(self, run_id: RunId) -> list[Event]:
        return self._call(_base.events(run_id))

    def cancel_run(self, run_id: RunId) -> Run:
        return self._call(_base.cancel_run(run_id))

    def delete_run(self, run_id: RunId) -> None:
        self._call(_base.delete_run(run_id))

    def create_key(self, name: str, role: str = "operator", namespace: str | None = None) -> ApiKey:
        """Create an API key; its secret is in ``.key`` of this answer only."""
        return self._call(_base.create_key(name, role, namespace))

    def list_keys(self) -> list[ApiKey]:
        """The API keys the caller administers (never their secrets)."""
        return self._call(_base.list_keys())

    def revoke_key(self, key_id: int) -> None:
        """Revoke an API key: every server refuses it within a second."""
        self._call(_base.revoke_key(key_id))

    def wait(
        self,
        run_id: RunId,
        poll_interval: float = 0.2,
        timeout: float | None = None,
        on_update: Callable[[Run], None] | None = None,
    ) -> Run:
        """Poll the run until it is terminal and return it; ``TimeoutError`` after ``timeout``."""
        waiter = _cursors.RunWaiter(run_id, poll_interval, timeout, time.monotonic)
        while True:
            run = self.get_run(run_id)
            if on_update is not None:
                on_update(run)
            if waiter.finished(run):
                return run
            time.sleep(waiter.delay())
