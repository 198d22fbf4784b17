"""Every ``ascli orchestrator`` command (IBM's Aspera CLI, its Orchestrator plugin) against
Legato: the requests it sends (all GET, ``api/<call>[/<id>]``, the format asked by
``format=``, a ``.json``/``.xml`` suffix or ``Accept``, credentials as HTTP Basic or
``login``/``password`` parameters) and the parts of each answer it reads, JSON as parsed,
XML as its XmlSimple reader folds it (root dropped, attributes and children as keys)."""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from test_aspera import ADMIN_KEY, DONE, LOGIN, PASSWORD
from test_aspera import _put as put
from test_aspera import _wait as wait

from legato import __version__
from legato.runtime import Legato

BASE = "/aspera/orchestrator/api"
STEP = "Create faspex package"

WORKFLOW = """
name: ascli-delivery
description: Delivers a package
inputs:
  wait: {type: string, default: 0s, description: how long the last step sleeps}
  target: {type: string}
steps:
  - id: create_package
    name: Create faspex package
    type: FaspexDelivery
    uses: python
    with: {function: "aspera_steps:create_package"}
  - id: settle
    name: Settle
    needs: [create_package]
    uses: sleep
    with: {duration: "${{ inputs.wait }}"}
outputs:
  package_id: ${{ steps.create_package.outputs.package_id }}
"""

FAILING = """
name: ascli-failing
steps:
  - id: broken
    name: Broken step
    uses: shell
    with: {argv: ["false"]}
"""


def xml_simple(text: str, *, force_array: bool) -> Any:
    """The document as XmlSimple's ``xml_in`` gives it (KeepRoot off, no KeyAttr)."""

    def fold(e: Any) -> Any:
        data: dict[str, Any] = dict(e.attrib)
        for child in e:
            value = fold(child)
            if child.tag in data:
                if not isinstance(data[child.tag], list):
                    data[child.tag] = [data[child.tag]]
                data[child.tag].append(value)
            else:
                data[child.tag] = [value] if force_array else value
        text = (e.text or "").strip()
        if text and not len(e):
            if not data:
                return e.text
            data["content"] = e.text
        return data

    return fold(SafeET.fromstring(text.encode()))


@dataclass(frozen=True)
class Ascli:
    """``call_ao`` of the plugin: one way to ask the format, one way to authenticate."""

    api: httpx.AsyncClient
    ret_style: str  # header | arg | ext
    auth_style: str  # head_basic | arg_pass

    async def response(
        self, endpoint: str, *, fmt: str | None = "json", args: dict[str, str] | None = None
    ) -> httpx.Response:
        path, query = f"{BASE}/{endpoint}", dict(args or {})
        headers = {"Authorization": "", "Accept": "*/*"}
        if fmt is not None:
            if self.ret_style == "header":
                headers["Accept"] = f"application/{fmt}"
            elif self.ret_style == "arg":
                query["format"] = fmt
            else:
                path = f"{path}.{fmt}"
        if self.auth_style == "arg_pass":
            query.update(login=LOGIN, password=PASSWORD)
        else:
            token = base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        r = await self.api.get(path, params=query, headers=headers)
        assert r.status_code == 200, (endpoint, r.status_code, r.text)  # else it raises
        return r

    async def __call__(
        self,
        endpoint: str,
        *,
        fmt: str = "json",
        args: dict[str, str] | None = None,
        xml_arrays: bool = True,
    ) -> Any:
        r = await self.response(endpoint, fmt=fmt, args=args)
        if fmt == "xml":
            return xml_simple(r.text, force_array=xml_arrays)
        if r.headers["content-type"].split(";")[0] == "application/json":
            return r.json()
        return r.text


async def settling(api: httpx.AsyncClient, run_id: int) -> dict[str, Any]:
    """The run once its first step is done (its second is a long sleep)."""
    for _ in range(400):
        run = (await api.get(f"/api/v1/runs/{run_id}")).json()
        if run["steps"][0]["status"] == "SUCCEEDED":
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError(run)


def object_list(data: Any) -> list[dict[str, Any]]:
    """What ``Result::ObjectList`` accepts: an array of hashes."""
    assert isinstance(data, list) and all(isinstance(d, dict) for d in data), data
    return data


def single_object(data: Any) -> dict[str, Any]:
    assert isinstance(data, dict), data
    return data


@pytest.fixture
async def user(engine: Legato) -> None:
    admin = await engine.tenancy.authenticate(ADMIN_KEY)
    await engine.tenancy.identity.create_user(admin, LOGIN, PASSWORD, "operator")


STYLES = [
    ("arg", "head_basic"),  # the plugin's defaults
    ("arg", "arg_pass"),
    ("header", "head_basic"),
    ("header", "arg_pass"),
    ("ext", "head_basic"),
    ("ext", "arg_pass"),
]


@pytest.mark.parametrize(("ret_style", "auth_style"), STYLES)
async def test_every_command(
    api: httpx.AsyncClient, user: None, ret_style: str, auth_style: str
) -> None:
    ao = Ascli(api, ret_style, auth_style)
    await put(api, WORKFLOW)
    await put(api, FAILING)

    # info / health: remote_node_ping in XML, not forced into arrays
    info = single_object(await ao("remote_node_ping", fmt="xml", xml_arrays=False))
    assert info["orchestrator-version"] == __version__

    # workflows list
    listed = object_list((await ao("workflows_list"))["workflows"]["workflow"])
    [wf] = [w for w in listed if w["name"] == "ascli-delivery"]
    fields = ["id", "portable_id", "name", "published_status", "published_revision_id"]
    fields += ["latest_revision_id", "last_modification"]
    assert set(fields) <= set(wf)
    assert isinstance(wf["id"], int) and wf["latest_revision_id"] == 1
    wf_id = str(wf["id"])

    # workflows inputs / outputs
    inputs = single_object((await ao(f"workflow_inputs_spec/{wf_id}"))["workflow_inputs_spec"])
    assert inputs["workflow_name"] == "ascli-delivery"
    assert [(i["name"], i["type"], i["required"]) for i in inputs["input"]] == [
        ("wait", "string", False),
        ("target", "string", True),
    ]
    outputs = await ao(f"workflow_outputs_spec/{wf_id}")
    assert object_list(outputs["workflow_outputs_spec"]["output"]) == [
        {
            "name": "package_id",
            "type": "string",
            "expression": "${{ steps.create_package.outputs.package_id }}",
        }
    ]

    # workflows start (asynchronous): the work order
    started = single_object(
        await ao(
            f"initiate/{wf_id}",
            args={"format": "json", "external_parameters[target]": "faspex"},
        )
    )
    order_id = int(started["work_order"]["id"])
    run = await wait(api, order_id, DONE)
    assert run["status"] == "SUCCEEDED" and run["inputs"]["target"] == "faspex"

    # workflows start --result=STEP:VARIABLE: that one value, as text
    value = await ao(
        f"initiate/{wf_id}",
        args={
            "format": "json",
            "external_parameters[target]": "faspex",
            "synchronous": "true",
            "explicit_output_step": STEP,
            "explicit_output_variable": "package_id",
        },
    )
    assert value == "5e0f9336-5e58-46a5-b944-a8253a956041"

    # workflows status ALL and ID, details, workorders
    every = object_list((await ao("workflows_status"))["workflows"]["workflow"])
    assert {w["name"] for w in every} == {"ascli-delivery", "ascli-failing"}
    [one] = object_list((await ao(f"workflows_status/{wf_id}"))["workflows"]["workflow"])
    assert one["name"] == "ascli-delivery"
    # the explicit output answered once its step ended: the run's last step may still run
    for _ in range(100):
        statuses = object_list(
            (await ao(f"workflow_details/{wf_id}"))["workflows"]["workflow"]["statuses"]
        )
        if [s["status"] for s in statuses] == ["Complete"]:
            break
        await asyncio.sleep(0.05)
    assert [(s["status"], s["count"]) for s in statuses] == [("Complete", 2)]
    orders = object_list((await ao(f"work_orders_list/{wf_id}"))["work_orders"])
    assert orders[-1]["id"] == order_id and {o["status"] for o in orders} == {"Complete"}

    # workflows export: no format asked, the body as text
    exported = await ao.response(f"export_workflow/{wf_id}", fmt=None)
    assert exported.text == WORKFLOW

    # workorders status / output / reset / cancel
    status = single_object((await ao(f"work_order_status/{order_id}"))["work_order"])
    assert status["status"] == {"state": "Complete", "value": "Complete"}
    variables = object_list((await ao(f"work_order_output/{order_id}", fmt="xml"))["variable"])
    assert [(v["step"], v["name"], v["content"]) for v in variables] == [
        (STEP, "package_id", "5e0f9336-5e58-46a5-b944-a8253a956041"),
        (STEP, "package_post_url", variables[1]["content"]),
        ("", "package_id", "5e0f9336-5e58-46a5-b944-a8253a956041"),
    ]
    assert variables[1]["content"].startswith("fasp://faspex@")

    failing = await ao("initiate/ascli-failing", args={"format": "json"})
    failed_id = int(failing["work_order"]["id"])
    assert (await wait(api, failed_id, DONE))["status"] == "FAILED"
    reset = single_object((await ao(f"work_order_reset/{failed_id}"))["work_order"])
    assert reset["action"] == "reset" and reset["id"] == str(failed_id)
    await wait(api, failed_id, DONE)

    slow = await ao(
        f"initiate/{wf_id}",
        args={"external_parameters[target]": "x", "external_parameters[wait]": "30s"},
    )
    slow_id = int(slow["work_order"]["id"])
    slow_run = await settling(api, slow_id)

    # workstep status (no output named): the step's status document
    step_id = slow_run["steps"][0]["id"]
    step = single_object(await ao(f"work_step_status/{step_id}"))
    assert step["work_step"]["id"] == step_id and step["work_step"]["workStepName"] == STEP
    assert [o["name"] for o in step["outputs"]] == ["package_id", "package_post_url"]

    # workstep cancel, workorders cancel
    settle = slow_run["steps"][1]
    cancelled_step = single_object(await ao(f"work_step_cancel/{settle['id']}"))
    assert cancelled_step["work_step"]["status"] == "Canceling"
    await wait(api, slow_id, DONE)
    again = await ao(
        f"initiate/{wf_id}",
        args={"external_parameters[target]": "x", "external_parameters[wait]": "30s"},
    )
    cancel = await ao.response(f"work_order_cancel/{again['work_order']['id']}")
    assert cancel.json()["work_order"]["action"] == "cancel"

    # plugins, processes, monitors
    plugins = object_list((await ao("plugin_version"))["Plugin"])
    assert {"python", "shell", "http", "sleep"} <= {p["name"] for p in plugins}
    processes = object_list((await ao("processes_status", fmt="xml"))["process"])
    assert processes and processes[0]["status"] == ["running"]
    assert processes[0]["pid"] == [str(os.getpid())]  # plain text, no type attribute
    monitor = single_object((await ao("monitor_snapshot"))["monitor"])
    assert monitor["workers"] == 1 and {"queued_work_orders", "running_work_orders"} <= set(monitor)


async def test_config_detect_pings_without_credentials(api: httpx.AsyncClient) -> None:
    """``config detect`` reads ``remote_node_ping?format=json`` before it has credentials."""
    r = await api.get(
        f"{BASE}/remote_node_ping",
        params={"format": "json"},
        headers={"Authorization": "", "Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["remote_orchestrator_info"]["orchestrator-version"] == __version__
