"""The rest of the family: the ping, workflows (list, status, details, input and output specs,
export), the step kinds as plugins, the worker processes and the queue monitor."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from legato import __version__
from legato.dialects.aspera.call import (
    MEDIA,
    PAGE_MAX,
    STATE_WORDS,
    AsperaError,
    Call,
    now_utc,
    rails_time,
    render_doc,
    text_answer,
    utc_text,
    wrapped_list,
)
from legato.dialects.aspera.render import (
    Array,
    Doc,
    Raw,
    to_json_data,
    value_type,
)
from legato.model.filters import RunFilter
from legato.model.step_kinds import KIND_SCHEMAS


def ping(fmt: str, target: str | None) -> Response:
    """``remote_node_ping``, answered to anyone: ``remote_orchestrator_info`` with the version
    (``orchestrator-version``, which clients read to detect the API) and that the node
    answers."""
    if target is not None:
        raise AsperaError(404, f"Method not found: remote_node_ping/{target}")
    info: Doc = [
        ("orchestrator-version", __version__),
        ("product", "Legato"),
        ("status", "OK"),
        ("time", now_utc()),
    ]
    if fmt == "json":
        body = {"remote_orchestrator_info": dict(info)}
        return Response(json.dumps(body), media_type=MEDIA["json"])
    return render_doc(fmt, "remote_orchestrator_info", info)


async def workflows_list(call: Call) -> Response:
    """``{"workflows": {"workflow": [...]}}``, the fields ``ascli orchestrator workflows list``
    shows; a workflow's portable id is its uuid, every version is published."""
    p, app = call.principal, call.app
    ids = await app.aspera_support.workflow_ids(p)
    docs: list[Doc] = [
        [
            ("id", ids.get(w["name"])),
            ("portable_id", w["uuid"]),
            ("name", w["name"]),
            ("published_status", "published"),
            ("published_revision_id", w["version"]),
            ("latest_revision_id", w["version"]),
            ("last_modification", rails_time(w["created_at"])),
            ("description", w["description"] or ""),
        ]
        for w in await app.workflows.list(p)
    ]
    return wrapped_list(call, "workflows", "workflow", docs)


async def _all_runs(call: Call, name: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    token: str | None = None
    flt = RunFilter(namespace_id=call.principal.namespace_id, workflow=name)
    while True:
        page = await call.app.runs.list_runs(call.principal, flt, PAGE_MAX, token)
        runs.extend(page["runs"])
        token = page["next_page_token"]
        if not token:
            return runs


def _by_word(runs: list[dict[str, Any]]) -> dict[str, tuple[int, str | None]]:
    """Per status word (in first-seen order of the table): work orders and last activity."""
    counts: dict[str, tuple[int, str | None]] = {}
    for word in dict.fromkeys(STATE_WORDS["run"].values()):
        of_word = [r for r in runs if STATE_WORDS["run"][r["status"]] == word]
        if of_word:
            last = max(r["updated_at"] or r["created_at"] for r in of_word)
            counts[word] = (len(of_word), last)
    return counts


async def workflow_details(call: Call) -> Response:
    ref = call.target or call.params.get("workflow_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: workflow_id", ["workflow_id"])
    p, app = call.principal, call.app
    name = await app.aspera_support.workflow_name(p, ref)
    workflow_id = await app.aspera_support.workflow_id(p, name)
    counts = _by_word(await _all_runs(call, name))
    docs: list[Doc] = [
        [("status", word), ("count", n), ("last-activity", rails_time(last))]
        for word, (n, last) in counts.items()
    ]
    doc: Doc = [
        ("id", workflow_id),
        ("name", name),
        ("statuses", Array("status-count", docs)),
    ]
    if call.fmt == "json":
        body = {"workflows": {"workflow": to_json_data(doc)}}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return render_doc(call.fmt, "workflows", [("workflow", doc)])


async def workflows_status(call: Call) -> Response:
    p, app = call.principal, call.app
    ids = await app.aspera_support.workflow_ids(p)
    workflows = await app.workflows.list(p)
    if call.target is not None:
        name = await app.aspera_support.workflow_name(p, call.target)
        workflows = [w for w in workflows if w["name"] == name]
    docs: list[Doc] = []
    for w in workflows:
        counts = _by_word(await _all_runs(call, w["name"]))
        docs.append(
            [
                ("id", ids.get(w["name"])),
                ("name", w["name"]),
                (
                    "statuses",
                    Array(
                        "status-count",
                        [[("status", word), ("count", n)] for word, (n, _) in counts.items()],
                    ),
                ),
            ]
        )
    return wrapped_list(call, "workflows", "workflow", docs)


async def _workflow(call: Call) -> tuple[int | None, dict[str, Any]]:
    """The workflow the path (or ``workflow_id``) names: its integer id and latest version."""
    ref = call.target or call.params.get("workflow_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: workflow_id", ["workflow_id"])
    name = await call.app.aspera_support.workflow_name(call.principal, ref)
    workflow = await call.app.workflows.get(call.principal, name)
    return await call.app.aspera_support.workflow_id(call.principal, name), workflow


def _spec(call: Call, root: str, item: str, head: Doc, items: list[Doc]) -> Response:
    """``{root: {…head, item: [...]}}`` (JSON, the list always a list) or
    ``<root>…head<item/>…</root>`` (XML)."""
    if call.fmt == "json":
        data = {**to_json_data(head), item: [to_json_data(d) for d in items]}
        return Response(json.dumps({root: data}, ensure_ascii=False), media_type=MEDIA["json"])
    return render_doc(call.fmt, root, [*head, *((item, d) for d in items)])


def _workflow_head(workflow_id: int | None, workflow: dict[str, Any]) -> Doc:
    return [
        ("workflow_id", workflow_id),
        ("workflow_name", workflow["name"]),
        ("revision_id", workflow["version"]),
    ]


async def workflow_inputs_spec(call: Call) -> Response:
    """The workflow's declared inputs: name, type, whether required, default, description."""
    workflow_id, workflow = await _workflow(call)
    declared: dict[str, Any] = workflow["definition"].get("inputs") or {}
    items: list[Doc] = []
    for name, spec in declared.items():
        spec = spec if isinstance(spec, dict) else {}
        items.append(
            [
                ("name", name),
                ("type", spec.get("type", "any")),
                ("required", "default" not in spec),
                ("default", Raw(spec.get("default"))),
                ("description", spec.get("description", "")),
            ]
        )
    head = _workflow_head(workflow_id, workflow)
    return _spec(call, "workflow_inputs_spec", "input", head, items)


async def workflow_outputs_spec(call: Call) -> Response:
    """The workflow's declared outputs: each name with the expression that gives it."""
    workflow_id, workflow = await _workflow(call)
    declared: dict[str, Any] = workflow["definition"].get("outputs") or {}
    items: list[Doc] = [
        [
            ("name", name),
            ("type", value_type(expression) if not isinstance(expression, str) else "string"),
            ("expression", Raw(expression)),
        ]
        for name, expression in declared.items()
    ]
    head = _workflow_head(workflow_id, workflow)
    return _spec(call, "workflow_outputs_spec", "output", head, items)


async def export_workflow(call: Call) -> Response:
    """The workflow's definition: its YAML source as applied when no format is asked, the
    parsed definition in JSON, the source inside ``<workflow>`` in XML."""
    workflow_id, workflow = await _workflow(call)
    source = str(workflow.get("source") or "")
    if not call.asked:
        return Response(source, media_type="application/yaml")
    if call.fmt == "txt":
        return text_answer(source)
    head = _workflow_head(workflow_id, workflow)
    if call.fmt == "json":
        body = {"workflow": {**to_json_data(head), "definition": workflow["definition"]}}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return render_doc("xml", "workflow", [*head, ("source", source)])


async def plugin_version(call: Call) -> Response:
    """The step kinds this Legato runs (``uses:``), as the plugins of the API."""
    items: list[Doc] = [
        [("name", kind), ("version", __version__), ("schema", schema.__name__)]
        for kind, schema in sorted(KIND_SCHEMAS.items())
    ]
    if call.fmt == "json":
        body = {"Plugin": [to_json_data(d) for d in items]}
        return Response(json.dumps(body), media_type=MEDIA["json"])
    return render_doc(call.fmt, "plugins", [("Plugin", d) for d in items])


async def processes_status(call: Call) -> Response:
    """The live worker processes, each a ``<process>`` of plain text fields (clients fold
    attributes such as ``type="integer"`` into the values)."""
    items: list[Doc] = [
        [
            ("name", str(w["id"])),
            ("host", str(w["host"])),
            ("pid", str(w["pid"])),
            ("concurrency", str(w["concurrency"])),
            ("status", "running"),
            ("started-at", utc_text(w["started_at"])),
            ("heartbeat-at", utc_text(w["heartbeat_at"])),
        ]
        for w in await call.app.workers()
    ]
    if call.fmt == "json":
        body = {"process": [to_json_data(d) for d in items]}
        return Response(json.dumps(body), media_type=MEDIA["json"])
    return render_doc(call.fmt, "processes", [("process", d) for d in items])


async def monitor_snapshot(call: Call) -> Response:
    """The namespace's queue (work orders waiting and running) and the workers serving it."""
    workers = await call.app.workers()
    queued = await _count(call, ("QUEUED",))
    running = await _count(call, ("RUNNING", "CANCELING"))
    monitor: Doc = [
        ("time", now_utc()),
        ("queued-work-orders", queued),
        ("running-work-orders", running),
        ("workers", len(workers)),
        ("capacity", sum(int(w["concurrency"]) for w in workers)),
    ]
    return render_doc(call.fmt, "monitor-snapshot", [("monitor", monitor)])


async def _count(call: Call, statuses: tuple[str, ...]) -> int:
    flt = RunFilter(namespace_id=call.principal.namespace_id, statuses=statuses)
    total, token = 0, None
    while True:
        page = await call.app.runs.list_runs(call.principal, flt, PAGE_MAX, token)
        total += len(page["runs"])
        token = page["next_page_token"]
        if not token:
            return total
