"""Work steps: a step's status document, its outputs (one, or every output of a work order),
and cancelling the work order a step belongs to."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import Response

from legato.dialects.aspera.call import (
    MEDIA,
    STATE_WORDS,
    AsperaError,
    Call,
    definition_step,
    integer_id,
    latest_values,
    now_utc,
    order_json,
    rails_time,
    render_doc,
    required,
    seconds_of,
    text_answer,
    value_doc,
    work_order_of,
)
from legato.dialects.aspera.render import (
    Array,
    Attr,
    Doc,
    Raw,
    ruby_text,
    to_xml,
    value_type,
)
from legato.model.errors import (
    Conflict,
    NotFound,
)
from legato.model.reads import RunHead
from legato.service.views import value_view


async def work_step_status(call: Call) -> Response:
    if call.target in (None, "work_order"):
        return await _step_of_work_order(call)
    step_id = integer_id(call.target or "", "Work step")
    if call.params.get("output_name", "").strip():
        return await step_output(call, step_id)
    try:
        head = await call.app.status.head_of_step(call.principal, step_id)
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} not found") from None

    async def build() -> Response:
        run = await call.app.status.run(call.principal)(head).body()
        step = next((s for s in run["steps"] if s["id"] == step_id), None)
        if step is None:
            step = await call.app.status.step(call.principal, str(step_id))(head).body()
        return await _step_status(call, head, run, step)

    return await _kept(call, head, ("work_step_status", step_id), build)


async def _step_of_work_order(call: Call) -> Response:
    order_ref, step_name = required(call, "work_order_id", "step_name")
    run_id = integer_id(order_ref, "Work order")
    try:
        head = await call.app.status.head(call.principal, run_id)
    except NotFound:
        raise AsperaError(404, f"Work order {run_id} not found") from None

    async def build() -> Response:
        run = await call.app.status.run(call.principal)(head).body()
        steps = run["steps"]
        step = next((s for s in steps if s["name"] == step_name), None)
        step = step or next((s for s in steps if s["key"] == step_name), None)
        if step is None:
            raise AsperaError(404, f"Work step '{step_name}' not found in work order {run['id']}")
        return await _step_status(call, head, run, step)

    return await _kept(call, head, ("work_order", step_name), build)


async def _kept(
    call: Call, head: RunHead, what: tuple[Any, ...], build: Callable[[], Awaitable[Response]]
) -> Response:
    """The answer ``build`` makes, kept with the run's version as the native reads keep
    their bodies (per format, and whether only the status word was asked for)."""

    async def rendered() -> tuple[bytes, str | None]:
        response = await build()
        return bytes(response.body), response.media_type

    key = ("aspera", *what, call.fmt, _status_only(call))
    try:
        body, media_type = await call.app.status.kept(head, key, rendered)
    except NotFound:  # deleted meanwhile
        raise AsperaError(404, f"Work order {head.id} not found") from None
    return Response(body, media_type=media_type)


def _status_only(call: Call) -> bool:
    return call.params.get("status_only", "").lower() == "true" or call.fmt == "txt"


async def _step_status(
    call: Call, head: RunHead, run: dict[str, Any], step: dict[str, Any]
) -> Response:
    """The step's status document, from the run at ``head``'s version (``run``, its view)."""
    word = STATE_WORDS["step"][step["status"]]
    if _status_only(call):
        return text_answer(word)
    p, app = call.principal, call.app
    values = [value_view(v) for v in await app.status.values_of(head)]
    workflow = await app.workflows.get(p, run["workflow"], run["workflow_version"])
    workflow_id = await app.aspera_support.workflow_id(p, run["workflow"])
    spec = definition_step(workflow["definition"], step["key"])
    timeout = seconds_of(spec.get("timeout"))
    activation = rails_time(step["started_at"])
    work_step: Doc = [
        ("workOrder-id", run["id"]),
        ("preProcessing", None),
        ("group", run["id"]),
        ("executionTimeout", timeout or 0),
        ("activable-date", activation),
        ("stepName", None),
        ("created-at", rails_time(step["created_at"])),
        ("updated-at", rails_time(step["finished_at"] or step["started_at"] or step["created_at"])),
        ("timeout", timeout),
        ("on-timeout", "fail" if timeout else None),
        ("step-type", step["type"] or step["kind"]),
        ("attempt", step["attempt"]),
        ("step-id", step["rank"] + 1),
        ("statusDetails", await _status_details(call, head, step)),
        ("rank", step["rank"] + 1),
        ("id", step["id"]),
        ("activation-date", activation),
        ("workflow-id", workflow_id),
        ("synch-filter", 0),
        ("completion-date", rails_time(step["finished_at"])),
        ("action-id", 0),
        ("status", word),
        ("running-as", 0),
        ("original-activation-date", activation),
        ("workStepName", step["name"]),
        ("postProcessing", None),
    ]
    inputs = latest_values([v for v in values if v["scope"] == "input"])
    carried = latest_values([v for v in values if v["scope"] == "var"])
    own = [v for v in values if v["scope"] == "output" and v["step_id"] == step["id"]]
    outputs = latest_values(own)
    doc: Doc = [
        ("inputs", Array("input", [value_doc(v) for v in inputs])),
        ("carry-thrus", Array("carry-thru", [value_doc(v) for v in carried])),
        ("work-step", work_step),
        ("outputs", Array("output", [value_doc(v) for v in outputs])),
    ]
    return render_doc(call.fmt, "Work-step-status", doc)


async def _status_details(call: Call, head: RunHead, step: dict[str, Any]) -> str:
    """What the step last said of itself: its error when it failed, else the latest message
    it reported with its progress, else its status message."""
    error = step.get("error") or {}
    if step["status"] in ("FAILED", "TIMED_OUT") and error.get("message"):
        return str(error["message"])
    said = await call.app.status.said_of(head, step["id"])
    return said if said else str(step["status_message"] or "")


async def step_output(call: Call, step_id: int) -> Response:
    [name] = required(call, "output_name")
    run_id = await call.app.aspera_support.run_of_step(call.principal, step_id)
    try:
        resource = call.app.status.output(call.principal, str(step_id), name)
        v = await (await call.app.status.snapshot(call.principal, run_id, resource)).body()
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} has no output '{name}'") from None
    if call.fmt == "txt":
        return text_answer(ruby_text(v["value"]))
    if call.fmt == "json":
        body = json.dumps(v["value"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return Response(body, media_type=MEDIA["json"])
    doc: Doc = [
        ("name", v["name"]),
        ("id", v["id"]),
        ("value", Raw(v["value"])),
        ("type", value_type(v["value"])),
    ]
    return render_doc("xml", "Work_step_output", doc)


async def work_order(call: Call) -> Response:
    """``api/work_order.xml?work_order_id=&step_name=[&status_only=true]``: the shorter form."""
    if call.target is not None:
        raise AsperaError(404, f"Method not found: work_order/{call.target}")
    return await _step_of_work_order(call)


async def work_order_output(call: Call) -> Response:
    order_ref = call.target or call.params.get("work_order_id", "")
    if not order_ref:
        raise AsperaError(400, "Missing parameters: work_order_id", ["work_order_id"])
    if not call.params.get("step_name") and not call.params.get("variable_name"):
        return await _every_output(call, await work_order_of(call, order_ref))
    step_name, name = required(call, "step_name", "variable_name")
    run = await work_order_of(call, order_ref)
    step = next((s for s in run["steps"] if step_name in (s["name"], s["key"])), None)
    if step is None:
        raise AsperaError(404, f"Work step '{step_name}' not found in work order {run['id']}")
    call = Call(call.app, call.principal, {**call.params, "output_name": name}, call.fmt, None)
    return await step_output(call, step["id"])


async def _every_output(call: Call, run: dict[str, Any]) -> Response:
    """Every output of the work order (the latest value per step and name), each a
    ``<variable>`` with its step, name and type as attributes and its value as text."""
    head = await call.app.status.head(call.principal, run["id"])
    values = [value_view(v) for v in await call.app.status.values_of(head)]
    names = {s["id"]: s["name"] for s in run["steps"]}
    latest: dict[tuple[Any, str], dict[str, Any]] = {}
    for v in values:
        if v["scope"] in ("output", "run_output"):
            latest[(v["step_id"], v["name"])] = v
    variables = [
        {
            "name": v["name"],
            "step": names.get(v["step_id"], v["step"] or "") if v["step_id"] else "",
            "id": str(v["id"]),
            "type": value_type(v["value"]),
            "value": v["value"],
        }
        for v in latest.values()
    ]
    if call.fmt == "json":
        body = {"work_order_id": run["id"], "variable": variables}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    if call.fmt == "txt":
        lines = [f"{v['name']}={ruby_text(v['value'])}" for v in variables]
        return text_answer("\n".join(lines))
    doc: Doc = [
        (
            "variable",
            Attr({k: str(v[k]) for k in ("name", "step", "id", "type")}, ruby_text(v["value"])),
        )
        for v in variables
    ]
    xml = to_xml("work_order_output", Attr({"id": str(run["id"])}, doc))
    return Response(xml, media_type=MEDIA["xml"])


async def work_step_cancel(call: Call) -> Response:
    """Cancels the work order the step belongs to; answers the step at ``Canceling``."""
    step_id = integer_id(call.target or call.params.get("work_step_id", ""), "Work step")
    p, app = call.principal, call.app
    try:
        run_id = await app.aspera_support.run_of_step(p, step_id)
    except NotFound:
        raise AsperaError(404, f"Work step {step_id} not found") from None
    try:
        await app.runs.cancel(p, run_id)
    except Conflict:
        raise AsperaError(409, f"Work step {step_id} has already ended") from None
    step = await app.runs.step(p, run_id, str(step_id))
    doc = Attr(
        {"time": now_utc(), "action": "cancel", "id": str(step_id)},
        [
            ("name", step["name"]),
            ("work_order_id", str(run_id)),
            ("status", "Canceling"),
        ],
    )
    if call.fmt == "json":
        body = {"work_step": order_json(doc)}
        return Response(json.dumps(body, ensure_ascii=False), media_type=MEDIA["json"])
    if call.fmt == "txt":
        return text_answer("Canceling")
    return Response(to_xml("work_step", doc), media_type=MEDIA["xml"])
