"""Status resources through HTTP: values, errors, resources; JSON, XML and text; ETags and
conditional requests; batch get; what another namespace sees."""

from __future__ import annotations

import time
from typing import Any

import defusedxml.ElementTree as SafeET
import httpx
from apikit import ISO_TIME, ApiKit, assert_problem, bearer

from legato.http.xml import from_xml

REPORT = """\
name: reporting
inputs:
  who: {type: string, default: world}
  n: {type: integer, default: 3}
steps:
  - id: work
    uses: python
    with: {function: "demo_steps:report"}
outputs:
  result: ${{ steps.work.outputs.ok }}
  size: ${{ inputs.n }}
"""

FAILING = """\
name: failing
steps:
  - id: bad
    uses: python
    with: {function: "demo_steps:fail"}
"""

GATED = """\
name: gated
steps:
  - id: gate
    uses: approval
"""

XML = "application/xml"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def tree(text: str) -> tuple[Any, ...]:
    """An XML document as nested (tag, attributes, text, children), parsed with defusedxml."""

    def walk(e: Any) -> tuple[Any, ...]:
        return (e.tag, dict(e.attrib), e.text, [walk(c) for c in e])

    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n'), text[:60]
    return walk(SafeET.fromstring(text.encode()))


def leaf(tag: str, text: str | None = None, **attrib: str) -> tuple[Any, ...]:
    return (tag, attrib, text, [])


def xml_data(r: httpx.Response, root: str) -> Any:
    """The XML body decoded back to JSON data (after checking its root element)."""
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == XML, r.headers
    element = SafeET.fromstring(r.content)
    assert element.tag == root
    return from_xml(element)


async def reporting_run(kit: ApiKit) -> dict[str, Any]:
    await kit.apply(REPORT)
    return await kit.wait((await kit.launch("reporting", n=5))["id"])


# -- values ---------------------------------------------------------------------------------


async def test_values_of_a_run_are_inputs_vars_outputs_and_run_outputs(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    run = await reporting_run(kit)
    assert run["status"] == "SUCCEEDED", run
    step_id = run["steps"][0]["id"]
    r = await api.get(f"/api/v1/runs/{run['id']}/values")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == JSON
    values = r.json()["values"]
    assert r.json().keys() == {"values"}
    for v in values:
        assert ISO_TIME.match(v.pop("created_at")), v
    ids = [v.pop("id") for v in values]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert values == [
        {"scope": "input", "name": "who", "type": "string", "value": "world", "step": None,
         "step_id": None},
        {"scope": "input", "name": "n", "type": "integer", "value": 5, "step": None,
         "step_id": None},
        {"scope": "var", "name": "color", "type": "string", "value": "blue", "step": "work",
         "step_id": step_id},
        {"scope": "output", "name": "ok", "type": "string", "value": "yes", "step": "work",
         "step_id": step_id},
        {"scope": "run_output", "name": "result", "type": "string", "value": "yes",
         "step": None, "step_id": None},
        {"scope": "run_output", "name": "size", "type": "integer", "value": 5, "step": None,
         "step_id": None},
    ]  # fmt: skip
    by_uuid = await api.get(f"/api/v1/runs/{run['uuid']}/values")
    assert by_uuid.json() == r.json()


async def test_a_value_by_id_in_json_xml_and_text(api: httpx.AsyncClient, kit: ApiKit) -> None:
    run = await reporting_run(kit)
    values = {v["name"]: v for v in (await api.get(f"/api/v1/runs/{run['id']}/values")).json()[
        "values"]}  # fmt: skip
    n = values["n"]
    expected = {
        "id": n["id"], "scope": "input", "name": "n", "type": "integer", "value": 5,
        "step": None, "step_id": None, "created_at": n["created_at"],
    }  # fmt: skip
    for path, headers in [
        (f"/api/v1/values/{n['id']}", {}),
        (f"/api/v1/values/{n['id']}.json", {}),
        (f"/api/v1/values/{n['id']}", {"Accept": "application/json"}),
        (f"/api/v1/values/{n['id']}.json", {"Accept": "application/xml"}),  # the suffix wins
    ]:
        r = await api.get(path, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == JSON
        assert r.json() == expected

    for path, headers in [
        (f"/api/v1/values/{n['id']}.xml", {}),
        (f"/api/v1/values/{n['id']}", {"Accept": "application/xml"}),
        (f"/api/v1/values/{n['id']}", {"Accept": "text/xml"}),
        (f"/api/v1/values/{n['id']}", {"Accept": "text/html, application/xml;q=0.9, */*;q=0.8"}),
    ]:
        r = await api.get(path, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == XML
        assert tree(r.text) == (
            "value", {}, None, [
                leaf("id", str(n["id"]), type="integer"),
                leaf("scope", "input"),
                leaf("name", "n"),
                leaf("type", "integer"),
                leaf("value", "5", type="integer"),
                leaf("step", nil="true"),
                leaf("step_id", nil="true"),
                leaf("created_at", n["created_at"]),
            ],
        )  # fmt: skip

    # text: strings as they are, anything else as JSON
    for name, text in [("n", "5"), ("who", "world"), ("color", "blue"), ("result", "yes")]:
        for path, headers in [
            (f"/api/v1/values/{values[name]['id']}.txt", {}),
            (f"/api/v1/values/{values[name]['id']}", {"Accept": "text/plain"}),
        ]:
            r = await api.get(path, headers=headers)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == TEXT
            assert r.text == text


async def test_values_of_every_type_in_text_and_xml(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply("""\
name: typed
inputs:
  items: {type: array}
  opts: {type: object}
  ratio: {type: number}
  flag: {type: boolean}
  none: {type: string, default: null}
steps:
  - id: s
    uses: python
    with: {function: "demo_steps:noop"}
""")
    run = await kit.wait(
        (
            await kit.launch(
                "typed", items=[1, "two", None, {"x": [True]}], opts={}, ratio=0.25, flag=False
            )
        )["id"]
    )
    values = (await api.get(f"/api/v1/runs/{run['id']}/values")).json()["values"]
    by_name = {v["name"]: v for v in values}
    texts = {
        "items": '[1,"two",null,{"x":[true]}]',
        "opts": "{}",
        "ratio": "0.25",
        "flag": "false",
        "none": "null",
    }
    types = {"items": "array", "opts": "object", "ratio": "number", "flag": "boolean",
             "none": "null"}  # fmt: skip
    for name, text in texts.items():
        v = by_name[name]
        assert v["type"] == types[name], v
        r = await api.get(f"/api/v1/values/{v['id']}.txt")
        assert (r.status_code, r.text) == (200, text)
        r = await api.get(f"/api/v1/values/{v['id']}.xml")
        assert xml_data(r, "value") == v
    items = tree((await api.get(f"/api/v1/values/{by_name['items']['id']}.xml")).text)
    assert items[3][4] == (
        "value", {"type": "array"}, None, [
            leaf("item", "1", type="integer"),
            leaf("item", "two"),
            leaf("item", nil="true"),
            ("item", {}, None, [
                ("x", {"type": "array"}, None, [leaf("item", "true", type="boolean")]),
            ]),
        ],
    )  # fmt: skip
    opts = tree((await api.get(f"/api/v1/values/{by_name['opts']['id']}.xml")).text)
    assert opts[3][4] == leaf("value", type="object")


async def test_a_step_output_by_name(api: httpx.AsyncClient, kit: ApiKit) -> None:
    run = await reporting_run(kit)
    values = (await api.get(f"/api/v1/runs/{run['id']}/values")).json()["values"]
    ok = next(v for v in values if v["scope"] == "output")
    base = f"/api/v1/runs/{run['id']}/steps/work/outputs/ok"
    r = await api.get(base)
    assert (r.status_code, r.json()) == (200, ok)
    assert (await api.get(f"/api/v1/runs/{run['uuid']}/steps/work/outputs/ok")).json() == ok
    by_step_id = f"/api/v1/runs/{run['id']}/steps/{ok['step_id']}/outputs/ok"
    assert (await api.get(by_step_id)).json() == ok
    assert (await api.get(f"{base}.txt")).text == "yes"
    assert xml_data(await api.get(f"{base}.xml"), "value") == ok
    assert_problem(await api.get(f"/api/v1/runs/{run['id']}/steps/work/outputs/nope"), 404,
                   "value_not_found")  # fmt: skip
    assert_problem(await api.get(f"/api/v1/runs/{run['id']}/steps/nope/outputs/ok"), 404,
                   "step_not_found")  # fmt: skip
    assert_problem(await api.get("/api/v1/runs/999/steps/work/outputs/ok"), 404, "run_not_found")


async def test_unknown_values_are_404(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await reporting_run(kit)
    for ref in ("999", "0", "abc", "99999999999999999999999", "999.xml", "999.txt"):
        assert_problem(await api.get(f"/api/v1/values/{ref}"), 404, "value_not_found")
    assert_problem(await api.get("/api/v1/runs/999/values"), 404, "run_not_found")


# -- errors and resources -------------------------------------------------------------------


async def test_errors_of_a_failed_run(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(FAILING)
    run = await kit.wait((await kit.launch("failing"))["id"])
    r = await api.get(f"/api/v1/runs/{run['id']}/errors")
    assert r.status_code == 200, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1 and ISO_TIME.match(errors[0]["time"]), errors
    assert errors == [
        {"id": errors[0]["id"], "code": "exception", "message": "ValueError: broken on purpose",
         "time": errors[0]["time"], "step": "bad"},
    ]  # fmt: skip
    assert xml_data(await api.get(f"/api/v1/runs/{run['id']}/errors.xml"), "errors") == errors
    ok = await reporting_run(kit)
    assert (await api.get(f"/api/v1/runs/{ok['id']}/errors")).json() == {"errors": []}
    assert tree((await api.get(f"/api/v1/runs/{ok['id']}/errors.xml")).text) == leaf(
        "errors", type="array"
    )


async def test_resources_a_run_affected(api: httpx.AsyncClient, kit: ApiKit) -> None:
    run = await reporting_run(kit)
    r = await api.get(f"/api/v1/runs/{run['id']}/resources")
    assert r.status_code == 200, r.text
    resources = r.json()["resources"]
    assert len(resources) == 1 and ISO_TIME.match(resources[0]["time"]), resources
    assert resources == [
        {"id": resources[0]["id"], "type": "bucket", "resource_id": "b-1",
         "action_result": "CREATED", "metadata": {"region": "eu"}, "step": "work",
         "time": resources[0]["time"]},
    ]  # fmt: skip
    r = await api.get(f"/api/v1/runs/{run['id']}/resources.xml")
    assert tree(r.text) == (
        "resources", {"type": "array"}, None, [
            ("item", {}, None, [
                leaf("id", str(resources[0]["id"]), type="integer"),
                leaf("type", "bucket"),
                leaf("resource_id", "b-1"),
                leaf("action_result", "CREATED"),
                ("metadata", {}, None, [leaf("region", "eu")]),
                leaf("step", "work"),
                leaf("time", resources[0]["time"]),
            ]),
        ],
    )  # fmt: skip


# -- formats of the run and its parts -------------------------------------------------------


async def test_every_status_resource_in_xml_is_its_json(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    run = await reporting_run(kit)
    base = f"/api/v1/runs/{run['id']}"
    for path, root, key in [
        ("", "run", None),
        ("/steps", "steps", "steps"),
        ("/steps/work", "step", None),
        ("/values", "values", "values"),
        ("/events", "events", "events"),
        ("/errors", "errors", "errors"),
        ("/resources", "resources", "resources"),
    ]:
        as_json = (await api.get(base + path)).json()
        expected = as_json[key] if key else dict(as_json)
        for r in (
            await api.get(f"{base}{path}.xml"),
            await api.get(base + path, headers={"Accept": XML}),
        ):
            data = xml_data(r, root)
            if root == "run":  # computed at each read from the clock
                for field in ("estimated_completion_time", "time_left"):
                    data.pop(field), expected.pop(field, None)
            assert data == expected, path
        json_suffix = await api.get(f"{base}{path}.json")
        assert json_suffix.headers["content-type"] == JSON
        assert json_suffix.json().keys() == as_json.keys()


async def test_the_xml_of_a_run_is_deterministic(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(FAILING)
    run = await kit.wait((await kit.launch("failing", labels={"team": "red"}))["id"])
    r = await api.get(f"/api/v1/runs/{run['id']}.xml")
    root = tree(r.text)
    assert root[0:3] == ("run", {}, None)
    fields = {child[0]: child for child in root[3]}
    assert [child[0] for child in root[3]] == list(run)  # element per key, in the JSON order
    assert fields["id"] == leaf("id", str(run["id"]), type="integer")
    assert fields["status"] == leaf("status", "FAILED")
    assert fields["inputs"] == leaf("inputs", type="object")
    assert fields["labels"] == ("labels", {}, None, [leaf("team", "red")])
    assert fields["requestor"] == leaf("requestor", nil="true")
    assert run["error"] == {"code": "exception", "message": "ValueError: broken on purpose",
                            "step": "bad"}  # fmt: skip
    # keys in the order of the JSON (which PostgreSQL's jsonb keeps its own way)
    assert fields["error"] == ("error", {}, None, [leaf(k, v) for k, v in run["error"].items()])
    assert fields["progress"] == (
        "progress", {}, None, [
            leaf("percent", "100.0", type="number"),
            leaf("finished_steps", "1", type="integer"),
            leaf("total_steps", "1", type="integer"),
        ],
    )  # fmt: skip
    steps = fields["steps"]
    assert steps[0:3] == ("steps", {"type": "array"}, None)
    assert [item[0] for item in steps[3]] == ["item"]
    step = {child[0]: child for child in steps[3][0][3]}
    assert step["needs"] == leaf("needs", type="array")
    assert step["key"] == leaf("key", "bad")
    assert (await api.get(f"/api/v1/runs/{run['id']}.xml")).text == r.text


async def test_run_and_step_status_words_in_text(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(GATED)
    run = await kit.launch("gated")
    await kit.wait_step(run["id"], "gate", "RUNNING")
    for path, word in [
        (f"/api/v1/runs/{run['id']}.txt", "RUNNING"),
        (f"/api/v1/runs/{run['uuid']}.txt", "RUNNING"),
        (f"/api/v1/runs/{run['id']}/steps/gate.txt", "RUNNING"),
    ]:
        r = await api.get(path)
        assert (r.status_code, r.headers["content-type"], r.text) == (200, TEXT, word)
    r = await api.get(f"/api/v1/runs/{run['id']}", headers={"Accept": "text/plain"})
    assert r.text == "RUNNING"
    await api.post(f"/api/v1/runs/{run['id']}/steps/gate/signal", json={})
    await kit.wait(run["id"])
    assert (await api.get(f"/api/v1/runs/{run['id']}.txt")).text == "SUCCEEDED"


async def test_unavailable_formats_are_406(api: httpx.AsyncClient, kit: ApiKit) -> None:
    run = await reporting_run(kit)
    base = f"/api/v1/runs/{run['id']}"
    for path in ("/steps.txt", "/values.txt", "/events.txt", "/errors.txt", "/resources.txt"):
        body = assert_problem(await api.get(base + path), 406, "not_acceptable")
        assert body["detail"] == (
            f"{base}{path.removesuffix('.txt')} is not available as .txt; it is as .json, .xml"
        )
    for accept in ("text/html", "image/png", "text/plain;q=0, application/*;q=0"):
        r = await api.get(base, headers={"Accept": accept})
        assert_problem(r, 406, "not_acceptable")
    body = assert_problem(await api.get(base + "/values", headers={"Accept": "text/plain"}), 406,
                          "not_acceptable")  # fmt: skip
    assert body["detail"] == (
        f"{base}/values is available as application/json, application/xml, none of which "
        "'Accept: text/plain' allows"
    )
    # wildcards and q-values
    for accept, kind in [
        ("*/*", JSON), ("application/*", JSON), ("text/*", XML), ("", JSON),
        ("application/xml, application/json", JSON), ("application/json;q=0.5, text/xml", XML),
        ("application/xml, */*", XML), ("text/plain, */*;q=0.1", TEXT),
    ]:  # fmt: skip
        r = await api.get(base, headers={"Accept": accept})
        assert (r.status_code, r.headers["content-type"]) == (200, kind), accept
    # only the status resources take a suffix
    assert_problem(await api.get(base + "/logs.json"), 404, "not_found")


# -- validators -----------------------------------------------------------------------------


async def test_every_status_resource_has_an_etag_and_answers_304(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    run = await reporting_run(kit)
    values = (await api.get(f"/api/v1/runs/{run['id']}/values")).json()["values"]
    base = f"/api/v1/runs/{run['id']}"
    paths = [
        base, f"{base}/steps", f"{base}/steps/work", f"{base}/values", f"{base}/events",
        f"{base}/errors", f"{base}/resources", f"{base}/steps/work/outputs/ok",
        f"/api/v1/values/{values[0]['id']}",
    ]  # fmt: skip
    seq = (await api.get(base)).headers["etag"].split(".")[1]
    for path in paths:
        formats = (
            ["json", "xml", "txt"] if path in (base, paths[2], *paths[7:]) else ["json", "xml"]
        )
        for fmt in formats:
            r = await api.get(f"{path}.{fmt}")
            tag = r.headers["etag"]
            assert tag == f'W/"{run["id"]}.{seq}.{fmt}"', (path, tag)
            assert r.headers["vary"] == "Accept"
            assert r.headers["cache-control"] == "no-cache"
            for inm in (tag, tag.removeprefix("W/"), f'W/"x", {tag}', "*"):
                again = await api.get(f"{path}.{fmt}", headers={"If-None-Match": inm})
                assert again.status_code == 304, (path, inm)
                assert again.content == b""
                assert again.headers["etag"] == tag
            other = "xml" if fmt == "json" else "json"
            r = await api.get(f"{path}.{other}", headers={"If-None-Match": tag})
            assert r.status_code == 200, (path, fmt)


async def test_a_change_of_the_run_changes_the_etag(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(GATED)
    run = await kit.launch("gated")
    await kit.wait_step(run["id"], "gate", "RUNNING")
    path = f"/api/v1/runs/{run['id']}"
    first = await api.get(path)
    tag = first.headers["etag"]
    assert (await api.get(path, headers={"If-None-Match": tag})).status_code == 304
    r = await api.post(f"{path}/steps/gate/signal", json={"answer": 42})
    assert r.status_code == 200, r.text
    await kit.wait(run["id"])
    r = await api.get(path, headers={"If-None-Match": tag})
    assert r.status_code == 200
    assert r.headers["etag"] != tag
    assert r.json()["status"] == "SUCCEEDED"
    assert int(r.headers["etag"].split(".")[1]) > int(tag.split(".")[1])


async def test_bad_waits_are_422(api: httpx.AsyncClient, kit: ApiKit) -> None:
    run = await reporting_run(kit)
    for wait in ("soon", "-1s", "1h", "5 s", "1e3", "30sec"):
        r = await api.get(f"/api/v1/runs/{run['id']}", params={"wait": wait})
        body = assert_problem(r, 422, "validation_error")
        assert body["errors"][0]["path"] == "wait"


async def test_a_long_poll_of_an_unchanged_run_ends_at_its_timeout(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    run = await reporting_run(kit)
    path = f"/api/v1/runs/{run['id']}/values"
    tag = (await api.get(path)).headers["etag"]
    for wait, seconds in (("300ms", 0.3), ("0.2", 0.2), ("0.2s", 0.2)):
        started = time.monotonic()
        r = await api.get(path, params={"wait": wait}, headers={"If-None-Match": tag})
        elapsed = time.monotonic() - started
        assert r.status_code == 304 and r.content == b""
        assert seconds <= elapsed < seconds + 0.5, elapsed
        # without a validator: the unchanged resource, after the wait
        started = time.monotonic()
        r = await api.get(path, params={"wait": wait})
        assert r.status_code == 200 and r.headers["etag"] == tag
        assert seconds <= time.monotonic() - started < seconds + 0.5
    # an old validator: the current resource at once
    started = time.monotonic()
    r = await api.get(path, params={"wait": "30s"}, headers={"If-None-Match": 'W/"1.0.json"'})
    assert r.status_code == 200 and time.monotonic() - started < 1.0


# -- batch get ------------------------------------------------------------------------------


async def test_batch_get_answers_in_the_asked_order(api: httpx.AsyncClient, kit: ApiKit) -> None:
    await kit.apply(FAILING)
    runs = [await kit.wait((await kit.launch("failing"))["id"]) for _ in range(3)]
    a, b, c = runs
    other_key = (await kit.new_key("admin", "tenant-b"))["key"]
    headers = {"Content-Type": "application/yaml", **bearer(other_key)}
    r = await api.put("/api/v1/workflows/failing", content=FAILING, headers=headers)
    assert r.status_code == 201, r.text
    foreign = (await kit.launch("failing", key=other_key))["id"]
    details = {x["id"]: await kit.get_run(x["id"]) for x in runs}

    r = await api.get(
        "/api/v1/runs:batchGet",
        params={"ids": f"{c['id']},{a['uuid']},999,{foreign},nope,{b['id']}"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "runs": [details[c["id"]], details[a["id"]], details[b["id"]]],
        "not_found": [999, foreign, "nope"],
    }
    r = await api.post(
        "/api/v1/runs/batch-get", json={"ids": [b["uuid"], foreign, a["id"], str(c["id"]), 0]}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "runs": [details[b["id"]], details[a["id"]], details[c["id"]]],
        "not_found": [foreign, 0],
    }
    r = await api.get("/api/v1/runs:batchGet", params={"ids": [str(a["id"]), str(b["id"])]})
    assert [x["id"] for x in r.json()["runs"]] == [a["id"], b["id"]]
    r = await api.get("/api/v1/runs:batchGet.xml", params={"ids": f"{a['id']},999"})
    batch = xml_data(r, "batch")
    assert batch["not_found"] == [999]
    assert [x["id"] for x in batch["runs"]] == [a["id"]]
    # the other tenant sees its own run only
    r = await api.post(
        "/api/v1/runs/batch-get", json={"ids": [a["id"], foreign]}, headers=bearer(other_key)
    )
    assert [x["id"] for x in r.json()["runs"]] == [foreign]
    assert r.json()["not_found"] == [a["id"]]


async def test_batch_get_limits(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/runs/batch-get", json={"ids": list(range(1, 102))})
    assert_problem(r, 422, "validation_error")
    r = await api.get("/api/v1/runs:batchGet", params={"ids": ",".join(map(str, range(1, 102)))})
    assert_problem(r, 422, "validation_error")
    r = await api.post("/api/v1/runs/batch-get", json={"ids": [2**64]})
    assert_problem(r, 422, "validation_error")
    r = await api.post("/api/v1/runs/batch-get", json={"ids": []})
    assert r.json() == {"runs": [], "not_found": []}
    assert_problem(await api.get("/api/v1/runs:batchGet"), 422, "validation_error")


# -- tenants --------------------------------------------------------------------------------


async def test_another_namespace_reads_none_of_the_status(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    run = await reporting_run(kit)
    values = (await api.get(f"/api/v1/runs/{run['id']}/values")).json()["values"]
    tenant_b = bearer((await kit.new_key("admin", "tenant-b"))["key"])
    for ref in (run["id"], run["uuid"]):
        for path in ("/values", "/errors", "/resources", "/watch", ".txt", ".xml",
                     "/steps/work/outputs/ok", "/values.xml"):  # fmt: skip
            r = await api.get(f"/api/v1/runs/{ref}{path}", headers=tenant_b)
            assert_problem(r, 404, "run_not_found")
            r = await api.get(f"/api/v1/runs/{ref}{path}", headers=tenant_b,
                              params={"wait": "1s"})  # fmt: skip
            assert_problem(r, 404, "run_not_found")
    for v in values:
        for suffix in ("", ".txt", ".xml"):
            r = await api.get(f"/api/v1/values/{v['id']}{suffix}", headers=tenant_b)
            assert_problem(r, 404, "value_not_found")
    r = await api.get("/api/v1/runs:batchGet", params={"ids": run["id"]}, headers=tenant_b)
    assert r.json() == {"runs": [], "not_found": [run["id"]]}
    # and the owner still reads them
    assert (await api.get(f"/api/v1/values/{values[0]['id']}")).status_code == 200


async def test_openapi_lists_the_status_routes(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    for path in (
        "/api/v1/runs/{run_id}/values", "/api/v1/values/{value_id}",
        "/api/v1/runs/{run_id}/steps/{step_key}/outputs/{name}", "/api/v1/runs/{run_id}/errors",
        "/api/v1/runs/{run_id}/resources", "/api/v1/runs/{run_id}/watch",
        "/api/v1/runs:batchGet", "/api/v1/runs/batch-get",
    ):  # fmt: skip
        assert path in spec["paths"], path
    params = {p["name"] for p in spec["paths"]["/api/v1/runs/{run_id}"]["get"]["parameters"]}
    assert {"wait", "if-none-match"} <= params
