"""The shapes of the datasourcesvc (Twinit Data Sources Service) orchestrator-run API: runs,
their steps and their log, from the plain records of the service layer."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any

from legato.model.reads import RunRead
from legato.model.times import iso
from legato.service.datasourcesvc_support import step_record

__all__ = [
    "STATE_WORDS",
    "STEP_WORDS",
    "log_text",
    "record_from_read",
    "record_from_view",
    "run_shape",
]

#: Legato run status -> datasourcesvc orch run ``_status``.
STATE_WORDS: dict[str, str] = {
    "QUEUED": "QUEUED",
    "RUNNING": "RUNNING",
    "CANCELING": "REQUEST_CANCEL",
    "SUCCEEDED": "COMPLETED",
    "FAILED": "ERROR",
    "TIMED_OUT": "ERROR",
    "CANCELED": "CANCELLED",
}
#: Legato step status -> datasourcesvc orch run step ``_status``.
STEP_WORDS: dict[str, str] = {
    "PENDING": "QUEUED",
    "READY": "QUEUED",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "COMPLETED",
    "FAILED": "ERROR",
    "TIMED_OUT": "ERROR",
    "CANCELED": "CANCELLED",
    "SKIPPED": "SKIPPED",
}
#: The number the service writes in its "Updating orch run status to N" log line.
STATUS_NUMBERS = {
    "QUEUED": 1,
    "RUNNING": 2,
    "REQUEST_CANCEL": 3,
    "COMPLETED": 4,
    "ERROR": 5,
    "CANCELLED": 6,
}
#: The label a run started through this API keeps its creator in.
CREATEDBY_LABEL = "datasourcesvc.createdby"
#: A workflow label holding the orchestrator's display name (workflow names are slugs).
NAME_LABEL = "datasourcesvc.name"
_IDS = uuid.UUID("6f1d6c1e-8f0b-4c4e-9a57-2f3c1d0b8a11")  # namespace of derived UUIDs


def derived_id(*parts: object) -> str:
    """A stable UUID for something Legato numbers differently (steps, components)."""
    return str(uuid.uuid5(_IDS, "/".join(str(p) for p in parts)))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def epoch_ms(ts: float | None) -> int | None:
    # whole milliseconds, as ISO 8601 times with milliseconds show them (truncated)
    return None if ts is None else math.floor(ts * 1000 + 0.001)


def _epoch(value: str | None) -> float | None:
    return None if value is None else datetime.fromisoformat(value).timestamp()


def record_from_view(view: dict[str, Any], workflow: dict[str, Any]) -> dict[str, Any]:
    """The record ``run_shape`` renders, from a native run view (as a start answers it, so
    the answer to a create shows the run as it was created) and its workflow's view."""
    return {
        "id": view["id"],
        "uuid": view["uuid"],
        "namespace": view["namespace"],
        "workflow_uuid": workflow["uuid"],
        "workflow_name": view["workflow"],
        "workflow_version": view["workflow_version"],
        "description": workflow["description"] or "",
        "operation_type": view["operation_type"],
        "requestor": view["requestor"],
        "labels": view["labels"],
        "status": view["status"],
        "error": view["error"],
        "inputs": view.get("inputs") or {},
        "outputs": view.get("outputs") or {},
        "created_at": _epoch(view["created_at"]),
        "started_at": _epoch(view["started_at"]),
        "finished_at": _epoch(view["finished_at"]),
        "updated_at": _epoch(view["updated_at"]),
        "steps": [
            {
                "id": st["id"],
                "key": st["key"],
                "name": st["name"],
                "kind": st["kind"],
                "type": st["type"],
                "rank": st["rank"],
                "status": st["status"],
                "error": st["error"],
                "outputs": st["outputs"] or {},
                "args": None,
                "started_at": _epoch(st["started_at"]),
                "finished_at": _epoch(st["finished_at"]),
            }
            for st in view.get("steps", [])
        ],
    }


def record_from_read(
    read: RunRead, args: dict[int, Any], workflow: dict[str, Any], namespace: str
) -> dict[str, Any]:
    """The record ``run_shape`` renders, from the typed read of a run, its top-level steps'
    resolved ``with:`` (by step id) and its workflow version's view."""
    run = read.run
    return {
        "id": run.id,
        "uuid": run.uuid,
        "namespace": namespace,
        "workflow_uuid": workflow["uuid"],
        "workflow_name": run.workflow_name,
        "workflow_version": run.workflow_version,
        "description": workflow["description"] or "",
        "operation_type": run.operation_type,
        "requestor": run.requestor,
        "labels": dict(run.labels or {}),
        "status": run.status,
        "error": run.error,
        "inputs": run.inputs or {},
        "outputs": run.outputs or {},
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "updated_at": run.updated_at,
        "steps": [step_record(s, args.get(s.id)) for s in read.steps],
    }


def _result(run: dict[str, Any]) -> str:
    if run["error"] and run["status"] in ("FAILED", "TIMED_OUT"):
        return str(run["error"].get("message") or run["error"].get("code") or "")
    return _json(run["outputs"]) if run["outputs"] else ""


def _step_type(step: dict[str, Any]) -> str:
    return str(step["type"] or step["kind"])


#: The keys of a step's ``with:`` that configure its kind rather than pass it a parameter.
_KIND_KEYS = {
    "python": {"function"},
    "shell": {"argv", "env", "cwd"},
    "workflow": {"workflow"},
}


def actual_params(step: dict[str, Any]) -> dict[str, Any]:
    """The parameters a step was given: its resolved ``with:`` without what configures its
    kind (empty until the step is released)."""
    args = step.get("args") or {}
    drop = _KIND_KEYS.get(step["kind"], set())
    return {k: v for k, v in args.items() if k not in drop}


def _step_shape(run: dict[str, Any], step: dict[str, Any], *, created: bool) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "id": derived_id(run["uuid"], "step", step["key"]),
        "_name": step["name"],
        "orchstepid": derived_id(run["workflow_uuid"], "step", step["key"]),
        "_compid": derived_id("component", _step_type(step)),
        "_orchrunid": run["uuid"],
        "_actualparams": _json(actual_params(step)),
        "_sequenceno": step["rank"] + 1,
        "_runparams": step["outputs"] if created else _json(step["outputs"]),
        "_status": STEP_WORDS.get(step["status"], step["status"]),
    }
    if not created:
        error = step["error"] or {}
        shape["_statusmsg"] = str(error.get("message") or "")
    return shape


def run_shape(run: dict[str, Any], form: str = "get") -> dict[str, Any]:
    """One orch run. ``form``: ``get`` (epoch strings, ``_updatedat``, steps), ``created``
    (the answer to a create: epoch as a number), ``cancel`` (the answer to a cancel)."""
    created = form == "created"
    stamp: Any = epoch_ms(run["created_at"])
    shape: dict[str, Any] = {
        "id": run["uuid"],
        "_orchid": run["workflow_uuid"],
        "_name": run["labels"].get(NAME_LABEL) or run["workflow_name"],
        "_description": run["description"],
        "_namespaces": [run["namespace"]],
        "_usertype": run["operation_type"],
        "_createdby": run["labels"].get(CREATEDBY_LABEL) or run["requestor"] or "",
        "_createdat": stamp if created else str(stamp),
    }
    if form == "get":
        shape["_updatedat"] = str(epoch_ms(run["updated_at"]))
    status = STATE_WORDS.get(run["status"], run["status"])
    if form == "cancel" and run["status"] in ("CANCELING", "CANCELED"):
        status = "REQUEST_CANCEL"  # the answer acknowledges the request
    shape["_status"] = status
    shape["_result"] = _result(run)
    shape["orchrunsteps"] = (
        [] if form == "cancel" else [_step_shape(run, s, created=created) for s in run["steps"]]
    )
    return shape


def log_text(run: dict[str, Any], lines: list[dict[str, Any]], node: str) -> str:
    """The run's log as the service writes it: one JSON object per line, lifecycle lines
    around the steps' own, ``end: true`` on the last once the run has ended."""
    rid, name = run["uuid"], run["workflow_name"]
    entries: list[tuple[float, int, int, dict[str, Any]]] = []

    def add(ts: float, phase: int, body: dict[str, Any]) -> None:
        entries.append((ts, phase, len(entries), body))

    def info(message: str, ts: float) -> dict[str, Any]:
        return {"level": "info", "message": message, "timestamp": iso(ts)}

    started = run["started_at"]
    if started is not None:
        add(started, 0, {"orchRunId": rid, **info("Orch run execution has begun", started)})
        add(
            started,
            0,
            info(f"Running Orchestrator: {name} in Node {node}, orch_run_id: {rid}", started),
        )
    for step in run["steps"]:
        label = f"{_step_type(step)}:{step['name']}"
        if step["started_at"] is not None:
            add(
                step["started_at"],
                1,
                info(
                    f"Node {node} Executing Step: {label}, orch_run_id: {rid}", step["started_at"]
                ),
            )
            if step["finished_at"] is not None:
                took = step["finished_at"] - step["started_at"]
                add(
                    step["finished_at"],
                    3,
                    info(_json([f"Step: {label} took ->{took:.2f}"]), step["finished_at"]),
                )
    for line in lines:
        add(
            line["time"],
            2,
            {
                "level": str(line["level"]).lower(),
                "message": line["message"],
                "timestamp": iso(line["time"]),
            },
        )
    finished = run["finished_at"]
    if finished is not None:
        took = finished - (started if started is not None else run["created_at"])
        word = STATE_WORDS.get(run["status"], run["status"])
        add(
            finished,
            4,
            info(
                f"Orchestrator {name} Execution Duration in project {run['namespace']} is: "
                f"{took:.2f}, orch_run_id: {rid}",
                finished,
            ),
        )
        add(
            finished,
            4,
            info(
                f"Updating orch run status to {STATUS_NUMBERS.get(word, 0)} in "
                f"OrchExecutionService, orch_run_id: {rid}",
                finished,
            ),
        )
        add(
            finished,
            5,
            {"end": True, **info("Orch run has ended. Closing up file log stream", finished)},
        )
    entries.sort(key=lambda e: (e[1] if e[1] in (0, 5) else 1, e[0], e[1], e[2]))
    return "".join(_json(body) + "\n" for *_key, body in entries)
