"""What a namespace's python steps may call is the installation's decision: refused at apply
time with the path and line of each function, allowed per namespace by the installation's
admins only, and never for the modules that reach the system."""

from __future__ import annotations

import httpx
from apikit import YAML, ApiKit, assert_problem, bearer

LEAK = """\
name: leak
steps:
  - id: admin-key
    uses: python
    with: {function: "os:getenv", key: LEGATO_ADMIN_KEY}
  - id: database
    uses: python
    with: {function: "tenant_steps:whoami", tenant: b}
"""
WHOAMI = """\
name: whoami
steps:
  - id: who
    uses: python
    with: {function: "tenant_steps:whoami", tenant: b}
"""
IMPORTED = """\
name: imported
steps:
  - id: env
    uses: python
    with: {function: "tenant_steps:getenv", key: LEGATO_ADMIN_KEY}
"""


async def test_apply_refuses_functions_the_namespace_cannot_call(api: httpx.AsyncClient) -> None:
    r = await api.put("/api/v1/workflows/leak", content=LEAK, headers=YAML)
    problem = assert_problem(r, 422, "invalid_definition")
    assert problem["errors"] == [
        {
            "path": "steps[0].with.function",
            "line": 5,
            "message": "module 'os' is never allowed in steps",
            "code": "function_not_allowed",
        },
        {
            "path": "steps[1].with.function",
            "line": 8,
            "message": "module 'tenant_steps' is not a step module of this namespace (allowed: "
            "demo_steps, aspera_steps, encoding_com_steps, legato_examples); "
            "an installation admin can allow it",
            "code": "function_not_allowed",
        },
    ]
    assert_problem(await api.get("/api/v1/workflows/leak"), 404, "workflow_not_found")


async def test_installation_admins_allow_step_modules_per_namespace(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    r = await api.post("/api/v1/namespaces", json={"name": "tenant-b"})
    assert r.json()["step_modules"] == []
    b_admin = bearer((await kit.new_key("admin", "tenant-b"))["key"])
    b_operator = bearer((await kit.new_key("operator", "tenant-b"))["key"])
    r = await api.put("/api/v1/workflows/whoami", content=WHOAMI, headers={**YAML, **b_operator})
    assert assert_problem(r, 422, "invalid_definition")["errors"][0]["code"] == (
        "function_not_allowed"
    )

    # a namespace's own admin does not decide what code its steps run
    allow = {"step_modules": ["tenant_steps"]}
    r = await api.patch("/api/v1/namespaces/tenant-b", json=allow, headers=b_admin)
    assert assert_problem(r, 403, "forbidden")["detail"] == (
        "only the installation's admins (admins of namespace 'default') set step_modules"
    )
    r = await api.post(
        "/api/v1/namespaces", json={"name": "tenant-c", "step_modules": ["x"]}, headers=b_admin
    )
    assert_problem(r, 403, "forbidden")
    body = {"step_modules": ["ok", "ok", "subprocess"]}
    r = await api.patch("/api/v1/namespaces/tenant-b", json=body)
    assert assert_problem(r, 422, "module_not_allowed")["errors"] == [
        {
            "path": "step_modules[2]",
            "message": "module 'subprocess' is never allowed in steps",
            "code": "module_not_allowed",
        }
    ]
    r = await api.patch("/api/v1/namespaces/tenant-b", json={"step_modules": ["bad name"]})
    assert assert_problem(r, 422, "module_not_allowed")["errors"][0]["path"] == "step_modules[0]"

    r = await api.patch(
        "/api/v1/namespaces/tenant-b", json={"step_modules": ["tenant_steps", "tenant_steps"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["step_modules"] == ["tenant_steps"]
    await kit.apply(WHOAMI, headers=b_operator)
    run = await kit.launch("whoami", key=b_operator["Authorization"].removeprefix("Bearer "))
    done = await kit.wait(run["id"], key=b_operator["Authorization"].removeprefix("Bearer "))
    assert done["status"] == "SUCCEEDED", done
    assert done["steps"][0]["outputs"] == {"tenant": "b"}

    # the other namespaces still cannot
    r = await api.put("/api/v1/workflows/whoami", content=WHOAMI, headers=YAML)
    assert_problem(r, 422, "invalid_definition")

    # a function the module imported from elsewhere is not the module's: refused when called
    await kit.apply(IMPORTED, headers=b_operator)
    b_key = b_operator["Authorization"].removeprefix("Bearer ")
    run = await kit.wait((await kit.launch("imported", key=b_key))["id"], key=b_key)
    assert run["status"] == "FAILED"
    assert run["steps"][0]["error"] == {
        "code": "function_not_allowed",
        "message": "'tenant_steps:getenv' belongs to module 'os', which is not an allowed "
        "step module",
    }

    r = await api.patch("/api/v1/namespaces/tenant-b", json={"step_modules": None})
    assert r.json()["step_modules"] == []
