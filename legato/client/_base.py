"""Request building and answer parsing shared by the sync and async clients, without IO.

Each API call is described by a :class:`Call`: the request to send and the function that turns
the answer into a typed result (or raises the typed error). The clients only send calls; the
state machines for paging, following logs and waiting live in ``_cursors``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import yaml

from legato.client._errors import error_from_response
from legato.client._models import (
    ApiKey,
    Event,
    LogLine,
    Run,
    RunPage,
    Step,
    Workflow,
)

__all__ = [
    "ADMIN_KEY_FILE",
    "DEFAULT_URL",
    "Call",
    "DefinitionTextError",
    "default_headers",
    "resolve_api_key",
    "resolve_base_url",
    "workflow_name_from_text",
]

DEFAULT_URL = "http://127.0.0.1:8080"
ADMIN_KEY_FILE = Path(".legato") / "admin.key"
API = "/api/v1"

T = TypeVar("T")
RunId = int | str


def _version() -> str:
    try:
        return metadata.version("legato")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


USER_AGENT = f"legato-client/{_version()}"


# --- settings -------------------------------------------------------------------------------


def resolve_base_url(base_url: str | None) -> str:
    """The explicit URL, else ``LEGATO_URL``, else the local default; without trailing slash."""
    return (base_url or os.environ.get("LEGATO_URL") or DEFAULT_URL).rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    """The explicit key, else ``LEGATO_API_KEY``, else ``.legato/admin.key`` in the cwd."""
    if api_key:
        return api_key
    from_env = os.environ.get("LEGATO_API_KEY")
    if from_env:
        return from_env
    try:
        return ADMIN_KEY_FILE.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# --- calls ----------------------------------------------------------------------------------

Params = list[tuple[str, str]]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and the parser of its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Params = field(default_factory=list)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False
    """Streamed answers may stay silent for long, so they get no read timeout."""

    def request_args(self, timeout: float) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.build_request`` (and its async twin)."""
        args: dict[str, Any] = {"method": self.method, "url": self.path}
        if self.stream:
            args["timeout"] = httpx.Timeout(timeout, read=None)
        if self.params:
            args["params"] = self.params
        if self.json is not None:
            args["json"] = self.json
        if self.content is not None:
            args["content"] = self.content
        if self.headers:
            args["headers"] = self.headers
        return args

    def handle(self, response: httpx.Response) -> T:
        """Raise the typed error of an error answer, else parse it."""
        if response.is_error:
            raise error_from_response(response)
        return self.parse(response)


def seg(value: RunId) -> str:
    return quote(str(value), safe="")


def _time(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    return dict(data) if isinstance(data, Mapping) else {}


def _items(response: httpx.Response, key: str) -> list[Mapping[str, Any]]:
    items = _json(response).get(key)
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def ndjson(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in lines:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


class DefinitionTextError(ValueError):
    """A workflow text whose name cannot be read (bad YAML/JSON or no ``name``)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _load_definition(text: str) -> Any:
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # a YAML flow mapping, or broken: YAML tells which and where
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionTextError(f"not valid YAML or JSON: {problem}", line) from exc


def workflow_name_from_text(text: str) -> str:
    """The ``name:`` of a YAML or JSON workflow definition."""
    data = _load_definition(text)
    name = data.get("name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise DefinitionTextError("the definition has no 'name'", 1)
    return name.strip()


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", _json)


def apply_workflow(name: str | None, text: str, content_type: str) -> Call[tuple[Workflow, bool]]:
    name = name or workflow_name_from_text(text)
    return Call(
        "PUT",
        f"{API}/workflows/{seg(name)}",
        lambda r: (Workflow.from_json(_json(r)), r.status_code == 201),
        content=text.encode("utf-8"),
        headers={"Content-Type": content_type},
    )


def list_workflows() -> Call[list[Workflow]]:
    return Call(
        "GET",
        f"{API}/workflows",
        lambda r: [Workflow.from_json(w) for w in _items(r, "workflows")],
    )


def get_workflow(name: str, version: int | None = None) -> Call[Workflow]:
    params = [("version", str(version))] if version is not None else []
    return Call(
        "GET", f"{API}/workflows/{seg(name)}", lambda r: Workflow.from_json(_json(r)), params
    )


def start_run(
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
) -> Call[Run]:
    body: dict[str, Any] = {"workflow": workflow, "inputs": dict(inputs or {})}
    if start_at is not None:
        body["start_at"] = _time(start_at)
    if version is not None:
        body["version"] = version
    if labels:
        body["labels"] = dict(labels)
    body["priority"] = priority
    if external_id is not None:
        body["external_id"] = external_id
    if notify_url is not None:
        body["notify_url"] = notify_url
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call(
        "POST", f"{API}/runs", lambda r: Run.from_json(_json(r)), json=body, headers=headers
    )


def get_run(run_id: RunId) -> Call[Run]:
    return Call("GET", f"{API}/runs/{seg(run_id)}", lambda r: Run.from_json(_json(r)))


def list_runs(
    status: str | None = None,
    workflow: str | None = None,
    label: str | Mapping[str, str] | None = None,
    created_after: datetime | str | None = None,
    created_before: datetime | str | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> Call[RunPage]:
    params: Params = []
    if status:
        params.append(("status", status))
    if workflow:
        params.append(("workflow", workflow))
    if isinstance(label, str):
        params.append(("label", label))
    elif label:
        params.extend(("label", f"{k}={v}") for k, v in label.items())
    if created_after is not None:
        params.append(("created_after", _time(created_after)))
    if created_before is not None:
        params.append(("created_before", _time(created_before)))
    if page_size is not None:
        params.append(("page_size", str(page_size)))
    if page_token:
        params.append(("page_token", page_token))
    return Call("GET", f"{API}/runs", lambda r: RunPage.from_json(_json(r)), params)


def steps(run_id: RunId, parent: int | None = None) -> Call[list[Step]]:
    params = [("parent", str(parent))] if parent is not None else []
    return Call(
        "GET",
        f"{API}/runs/{seg(run_id)}/steps",
        lambda r: [Step.from_json(s) for s in _items(r, "steps")],
        params,
    )


def log_params(step: str | None, after: int | None, follow: bool) -> Params:
    params: Params = []
    if step:
        params.append(("step", step))
    if after is not None:
        params.append(("after", str(after)))
    if follow:
        params.append(("follow", "true"))
    return params


def logs(run_id: RunId, step: str | None = None, after: int | None = None) -> Call[list[LogLine]]:
    return Call(
        "GET",
        f"{API}/runs/{seg(run_id)}/logs",
        lambda r: [LogLine.from_json(d) for d in ndjson(r.content.splitlines())],
        log_params(step, after, follow=False),
        headers={"Accept": "application/x-ndjson"},
    )


def events(run_id: RunId) -> Call[list[Event]]:
    return Call(
        "GET",
        f"{API}/runs/{seg(run_id)}/events",
        lambda r: [Event.from_json(e) for e in _items(r, "events")],
    )


def cancel_run(run_id: RunId) -> Call[Run]:
    return Call("POST", f"{API}/runs/{seg(run_id)}/cancel", lambda r: Run.from_json(_json(r)))


def delete_run(run_id: RunId) -> Call[None]:
    return Call("DELETE", f"{API}/runs/{seg(run_id)}", lambda r: None)


def create_key(name: str, role: str = "operator", namespace: str | None = None) -> Call[ApiKey]:
    body: dict[str, Any] = {"name": name, "role": role}
    if namespace is not None:
        body["namespace"] = namespace
    return Call("POST", f"{API}/keys", lambda r: ApiKey.from_json(_json(r)), json=body)


def list_keys() -> Call[list[ApiKey]]:
    return Call("GET", f"{API}/keys", lambda r: [ApiKey.from_json(k) for k in _items(r, "keys")])


def revoke_key(key_id: int) -> Call[None]:
    return Call("DELETE", f"{API}/keys/{int(key_id)}", lambda r: None)
