"""Work orders: initiating one (synchronously, or for one explicit output), its status
document, cancelling, resetting, and the work orders of a workflow."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from fastapi.responses import Response

from legato.dialects.aspera.call import (
    FORMATS,
    MEDIA,
    PAGE_DEFAULT,
    PAGE_MAX,
    STATE_WORDS,
    SYNC_WAIT,
    AsperaError,
    Call,
    integer_id,
    now_utc,
    order_json,
    rails_time,
    render_list,
    required,
    text_answer,
    utc_text,
    work_order_of,
)
from legato.dialects.aspera.render import (
    Array,
    Attr,
    Doc,
    ruby_text,
    to_json_data,
    to_xml,
)
from legato.model.errors import (
    Conflict,
    NotFound,
)
from legato.model.filters import RunFilter
from legato.model.ids import parse_id
from legato.model.starts import StartRun
from legato.model.states import RUN_TERMINAL, STEP_TERMINAL


async def order_doc(call: Call, run: dict[str, Any], action: str) -> Attr:
    p, app = call.principal, call.app
    workflow_id = await app.aspera_support.workflow_id(p, run["workflow"])
    word = STATE_WORDS["run"][run["status"]]
    running = [s for s in run["steps"] if s["status"] == "RUNNING"]
    text = f"Executing Step: {running[0]['name']} ({running[0]['id']})" if running else word
    owner = run["requestor"] or ""
    work_steps: Doc = [
        (
            "work_step",
            Attr(
                {"id": str(s["id"])},
                [
                    ("name", s["name"]),
                    ("step_type", s["type"] or s["kind"]),
                    ("status", STATE_WORDS["step"][s["status"]]),
                    ("status_details", s["status_message"] or ""),
                    ("started_at", utc_text(s["started_at"])),
                    ("completed_at", utc_text(s["finished_at"])),
                ],
            ),
        )
        for s in run["steps"]
    ]
    content: Doc = [
        ("name", run["labels"].get("name") or run["workflow"]),
        (
            "workflow",
            Attr(
                {"id": str(workflow_id or ""), "revision_id": str(run["workflow_version"])},
                run["workflow"],
            ),
        ),
        ("status", Attr({"state": word}, text)),
        ("comments", ""),
        ("latest_update", run["status_message"] or ""),
        (
            "ownership",
            [("initiated_by", owner), ("running_as", owner), ("launched_by", owner)],
        ),
        ("priority", Attr({"dedicated_worker": "false"}, str(aspera_priority(run["priority"])))),
        (
            "timestamps",
            [
                ("created_at", utc_text(run["created_at"])),
                ("initiated_at", utc_text(run["started_at"])),
                ("updated_at", utc_text(run["updated_at"])),
                ("completed_at", utc_text(run["finished_at"])),
            ],
        ),
        ("work_steps", work_steps),
    ]
    master = run["parent_run_id"] or run["id"]
    attrs = {"time": now_utc(), "action": action, "id": str(run["id"]), "master_id": str(master)}
    return Attr(attrs, content)


def order_response(call: Call, doc: Attr) -> Response:
    if call.fmt == "json":
        body = {"work_order": order_json(doc)}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    if call.fmt == "txt":
        content = doc.content if isinstance(doc.content, list) else []
        state = next(v for k, v in content if k == "status")
        return text_answer(state.attrs["state"])
    return Response(to_xml("work_order", doc), media_type=MEDIA["xml"])


def aspera_priority(priority: int) -> int:
    """Legato's priority (0 = normal) as this API's 1 (low) … 3 (high)."""
    return max(1, min(3, priority + 2))


async def work_order_status(call: Call) -> Response:
    ref = call.target or call.params.get("work_order_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    run = await work_order_of(call, ref)
    return order_response(call, await order_doc(call, run, "status"))


async def work_order_cancel(call: Call) -> Response:
    ref = call.target or call.params.get("work_order_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    run = await work_order_of(call, ref)
    try:
        run = await call.app.runs.cancel(call.principal, run["id"])
    except Conflict:  # it ended meanwhile: say how
        run = await work_order_of(call, str(run["id"]))
        word = STATE_WORDS["run"][run["status"]]
        raise AsperaError(409, f"Work order {run['id']} has already ended ({word})") from None
    return order_response(call, await order_doc(call, run, "cancel"))


def _coerce(value: str, spec: Any) -> Any:
    """A parameter's text as the declared input type wants it (JSON text for non-strings)."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in (None, "string"):
        return value
    try:
        return orjson.loads(value)  # strict: no lone surrogates, bounded depth
    except ValueError:
        return value


async def initiate(call: Call) -> Response:
    p, app = call.principal, call.app
    ref = call.target
    if ref is None or ref in FORMATS:
        [ref] = required(call, "work_order[workflow_id]")
    name = await app.aspera_support.workflow_name(p, ref)
    workflow = await app.workflows.get(p, name)
    declared = workflow["definition"].get("inputs") or {}
    inputs: dict[str, Any] = {}
    for key, value in call.params.items():
        if key.startswith("external_parameters[") and key.endswith("]"):
            field = key[len("external_parameters[") : -1]
            inputs[field] = _coerce(value, declared.get(field))
    priority = 0
    if call.params.get("work_order[priority]"):
        text = call.params["work_order[priority]"]
        if text not in ("1", "2", "3"):
            raise AsperaError(400, "work_order[priority] must be 1 (low), 2 or 3 (high)")
        priority = int(text) - 2
    labels = {}
    if call.params.get("work_order[name]"):
        labels["name"] = call.params["work_order[name]"][:200]
    run, _ = await app.runs.start(
        p,
        StartRun(
            name,
            inputs=inputs,
            labels=labels,
            priority=priority,
            requestor=(p.subject or p.name or None),
        ),
    )
    run = await app.runs.get(p, run["id"])
    explicit = [call.params.get(f"explicit_output_{n}", "").strip() for n in ("step", "variable")]
    if any(explicit):
        return await _explicit_output(call, run, *explicit)
    if call.params.get("synchronous", "").lower() == "true":
        run = await wait_for(call, run, call.params.get("step_name", "").strip())
    return order_response(call, await order_doc(call, run, "initiate"))


async def _explicit_output(
    call: Call, run: dict[str, Any], step_name: str, variable: str
) -> Response:
    """``explicit_output_step`` + ``explicit_output_variable``: waits for that step, then
    answers that one output's value alone, as text (whatever format was asked)."""
    if not step_name or not variable:
        pairs = (("step", step_name), ("variable", variable))
        missing = [f"explicit_output_{n}" for n, v in pairs if not v]
        raise AsperaError(400, f"Missing parameters: {', '.join(missing)}", missing)
    run = await wait_for(call, run, step_name)
    step = next((s for s in run["steps"] if step_name in (s["name"], s["key"])), None)
    if step is None:
        raise AsperaError(404, f"Work step '{step_name}' not found in work order {run['id']}")
    try:
        resource = call.app.status.output(call.principal, str(step["id"]), variable)
        snapshot = await call.app.status.snapshot(call.principal, run["id"], resource)
        value = (await snapshot.body())["value"]
    except NotFound:
        word = STATE_WORDS["step"][step["status"]]
        raise AsperaError(
            404, f"Work step '{step_name}' ({word}) has no output '{variable}'"
        ) from None
    return text_answer(ruby_text(value))


async def wait_for(call: Call, run: dict[str, Any], step_name: str) -> dict[str, Any]:
    """Long-polls (at most :data:`SYNC_WAIT` seconds) until the named step or the run ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SYNC_WAIT
    while True:
        if run["status"] in RUN_TERMINAL:
            return run
        if step_name:
            step = next((s for s in run["steps"] if step_name in (s["name"], s["key"])), None)
            if step is not None and step["status"] in STEP_TERMINAL:
                return run
        left = deadline - loop.time()
        if left <= 0:
            return run
        await call.app.runs.wait_for_change(run["id"], min(left, 1.0))
        run = await call.app.runs.get(call.principal, run["id"])


async def work_orders_list(call: Call) -> Response:
    p, app = call.principal, call.app
    ref = call.target or call.params.get("workflow_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: workflow_id", ["workflow_id"])
    name = await app.aspera_support.workflow_name(p, ref)
    workflow_id = await app.aspera_support.workflow_id(p, name)
    limit_text = call.params.get("limit", str(PAGE_DEFAULT))
    limit = parse_id(limit_text, low=1, high=PAGE_MAX)
    if limit is None:
        raise AsperaError(400, f"limit must be between 1 and {PAGE_MAX}")
    page = await app.runs.list_runs(
        p,
        RunFilter(namespace_id=p.namespace_id, workflow=name),
        limit,
        call.params.get("page_token") or None,
    )
    docs: list[Doc] = [
        [
            ("id", r["id"]),
            ("name", r["labels"].get("name") or r["workflow"]),
            ("workflow-id", workflow_id),
            ("revision-id", r["workflow_version"]),
            ("status", STATE_WORDS["run"][r["status"]]),
            ("statusDetails", r["status_message"] or ""),
            ("priority", aspera_priority(r["priority"])),
            ("created-at", rails_time(r["created_at"])),
            ("initiated-at", rails_time(r["started_at"])),
            ("completed-at", rails_time(r["finished_at"])),
        ]
        for r in page["runs"]
    ]
    if call.fmt == "json":
        body = {"work_orders": [to_json_data(d) for d in docs]}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    return render_list(call, "work-orders", Array("work-order", docs))


async def work_order_reset(call: Call) -> Response:
    """Retries a failed work order from its failed steps."""
    ref = call.target or call.params.get("work_order_id", "")
    if not ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    run = await work_order_of(call, ref)
    return await reset_order(call, run)


async def workstep_reset(call: Call) -> Response:
    """Retries the failed work order a step belongs to, from its failed steps."""
    step_id = integer_id(call.target or call.params.get("work_step_id", ""), "Work step")
    try:
        run_id = await call.app.aspera_support.run_of_step(call.principal, step_id)
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} not found") from None
    return await reset_order(call, await call.app.runs.get(call.principal, run_id))


async def reset_order(call: Call, run: dict[str, Any]) -> Response:
    try:
        run = await call.app.runs.retry(call.principal, run["id"])
    except Conflict:
        word = STATE_WORDS["run"][run["status"]]
        raise AsperaError(409, f"Work order {run['id']} has not failed ({word})") from None
    return order_response(call, await order_doc(call, run, "reset"))
