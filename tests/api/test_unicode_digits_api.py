"""Ids and numbers are read from ASCII digits only: ``'³'.isdigit()`` holds but ``int('³')``
raises, and ``int('\\u0661')`` reads an Arabic-Indic one. Every face answers its own "not found" or
"bad parameter" for such spellings, never a 500."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
import pytest
from apikit import ADMIN_KEY, ApiKit, assert_problem

from legato.model.ids import MAX_ID, parse_id
from legato.runtime import Legato

ARABIC_ONE = "\u0661"
SPELLINGS = ["³", ARABIC_ONE, "1_0", " 1", "+1", "-1", "1.0", str(2**63), "", "01x"]
QUICK = """\
name: quick
steps:
  - id: noop
    uses: shell
    with: {argv: ["true"]}
"""


def test_parse_id_reads_ascii_digits_in_range_only() -> None:
    assert [parse_id(text) for text in ("0", "7", "0042", str(MAX_ID))] == [0, 7, 42, MAX_ID]
    assert [parse_id(text) for text in [*SPELLINGS, None, "1\n"]] == [None] * (len(SPELLINGS) + 2)
    assert parse_id("5", low=1, high=4) is None and parse_id("0", low=1) is None
    assert parse_id("4", low=1, high=4) == 4


async def test_no_path_of_any_operation_answers_500_for_unicode_digits(
    api: httpx.AsyncClient,
) -> None:
    spec = (await api.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method in operations:
            for text in ("%C2%B3", "%D9%A1", "%E2%91%A0"):
                url = re.sub(r"\{[^}]+\}", text, path)
                r = await api.request(method.upper(), url)
                assert r.status_code < 500, (method, url, r.status_code, r.text)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/runs/{}", "/api/v1/runs/{}/steps", "/api/v1/runs/{}/events",
     "/api/v1/runs/{}/logs", "/api/v1/runs/{}/values", "/api/v1/runs/{}/watch",
     "/api/v1/runs/{}.xml"],
)  # fmt: skip
async def test_a_run_named_by_unicode_digits_is_404(api: httpx.AsyncClient, path: str) -> None:
    for text in ("³", "\u0661\u0662", "²⁰"):
        assert_problem(await api.get(path.format(text)), 404, "run_not_found")
    assert_problem(await api.post("/api/v1/runs/³/cancel"), 404, "run_not_found")
    assert_problem(await api.get("/api/v1/values/³"), 404, "value_not_found")


async def test_last_event_id_in_unicode_digits_is_ignored(
    api: httpx.AsyncClient, kit: ApiKit
) -> None:
    await kit.apply(QUICK)
    run = await kit.launch("quick")
    await kit.wait(run["id"])
    for path in (f"/api/v1/runs/{run['id']}/watch", f"/api/v1/runs/{run['id']}/logs?follow=true"):
        headers = {"Last-Event-ID": "³".encode("latin-1"), "Accept": b"text/event-stream"}
        r = await api.get(path, headers=headers)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream"), r.headers


async def test_webhook_page_token_in_unicode_digits_is_422(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/webhooks/deliveries", params={"page_token": "³"})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["path"] == "page_token", body


async def test_oac_ids_limits_and_pages_in_unicode_digits(api: httpx.AsyncClient) -> None:
    base = "/api/20210901/workRequests"
    for text in ("³", ARABIC_ONE):
        for method, path in (("GET", "{}"), ("DELETE", "{}"), ("GET", "{}/errors"),
                             ("GET", "{}/logs")):  # fmt: skip
            r = await api.request(method, f"{base}/{path.format(text)}")
            assert r.status_code == 404, r.text
            assert r.json()["code"] == "NotAuthorizedOrNotFound", r.json()
        r = await api.get(base, params={"limit": text})
        assert (r.status_code, r.json()["code"]) == (400, "InvalidParameter"), r.text
    r = await api.get(f"{base}/1/logs", params={"page": "³"})
    assert r.status_code in (400, 404), r.text


async def test_datasourcesvc_ids_and_numbers_in_unicode_digits(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    runs = [p for p in spec["paths"] if p.startswith("/datasourcesvc") and "{" in p]
    assert runs, sorted(spec["paths"])
    for path in runs:
        r = await api.get(re.sub(r"\{[^}]+\}", "³", path))
        assert r.status_code in (400, 404, 405), (path, r.text)
    listing = next(p for p in spec["paths"] if p.startswith("/datasourcesvc") and "{" not in p)
    for name in ("_pageSize", "_offset"):
        for text in ("³", ARABIC_ONE, " 1", "1_0"):
            r = await api.get(listing, params={name: text})
            assert r.status_code == 400, (name, text, r.text)


async def test_aspera_ids_and_limits_in_unicode_digits(
    api: httpx.AsyncClient, engine: Legato
) -> None:
    admin = await engine.tenancy.authenticate(ADMIN_KEY)
    await engine.tenancy.identity.create_user(admin, "admin", "aspera-password-1", "operator")
    auth = {"login": "admin", "password": "aspera-password-1"}
    base = "/aspera/orchestrator/api"
    for text in ("³", ARABIC_ONE):
        r = await api.get(
            f"{base}/work_order_status.json",
            params={**auth, "work_order_id": text},
            headers={"Authorization": ""},
        )
        assert r.status_code == 404, r.text
        assert r.json()["work_order"]["statusDetails"] == f"Work order {text} not found"


async def test_encoding_com_media_ids_in_unicode_digits(
    api: httpx.AsyncClient, engine: Legato
) -> None:
    userid = str((await engine.tenancy.authenticate(ADMIN_KEY)).key_id)
    for text in ("³", ARABIC_ONE):
        query = {"userid": userid, "userkey": ADMIN_KEY, "action": "GetStatus", "mediaid": text}
        r = await api.post("/", data={"json": orjson.dumps({"query": query}).decode()})
        assert r.status_code == 200, r.text
        answer: Any = r.json()
        assert f"Wrong mediaid '{text}'" in r.text, answer
