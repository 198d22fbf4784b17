"""Start a work order through the Aspera Orchestrator API and read it back the way the
vendor's clients do (login and password as query parameters).

Run against ``make serve``::

    python examples/dialects/aspera/aspera_demo.py

Base URL from ``LEGATO_URL`` (default http://127.0.0.1:8080), admin key from
``LEGATO_API_KEY`` or ``.legato/admin.key``. The script applies the workflow and creates the
user ``aspera-demo`` (password from ``ASPERA_PASSWORD``, default below) with the admin key,
then speaks only the Aspera API. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
URL = os.environ.get("LEGATO_URL", "http://127.0.0.1:8080").rstrip("/")
ASPERA = f"{URL}/aspera/orchestrator/api"
LOGIN = "aspera-demo"
PASSWORD = os.environ.get("ASPERA_PASSWORD", "aspera-demo-password")
WORKFLOW = "aspera-faspex-order"


def api_key() -> str:
    key = os.environ.get("LEGATO_API_KEY")
    if key:
        return key
    path = Path(".legato") / "admin.key"
    if path.exists():
        return path.read_text().strip()
    sys.exit("set LEGATO_API_KEY or run from the directory where `make serve` wrote .legato/")


def native(method: str, path: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(f"{URL}{path}", data=body, method=method)
    request.add_header("Authorization", f"Bearer {api_key()}")
    request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def aspera(path: str, **params: str) -> str:
    query = urllib.parse.urlencode({"login": LOGIN, "password": PASSWORD, **params})
    try:
        with urllib.request.urlopen(f"{ASPERA}/{path}?{query}") as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read().decode()}"


def show(title: str, text: str) -> None:
    print(f"--- {title}\n{text.rstrip()}\n")


def main() -> None:
    source = (HERE / f"{WORKFLOW}.yaml").read_bytes()
    status = native("PUT", f"/api/v1/workflows/{WORKFLOW}", source, "application/yaml")
    print(f"workflow {WORKFLOW}: HTTP {status}")
    user = {"username": LOGIN, "password": PASSWORD, "role": "operator"}
    status = native("POST", "/api/v1/users", json.dumps(user).encode(), "application/json")
    print(f"user {LOGIN}: HTTP {status} (409: exists already)\n")

    started = aspera(f"initiate/{WORKFLOW}.xml")
    show("initiate", started)
    order_id = ET.fromstring(started).get("id", "")

    step = "Create faspex package"
    for _ in range(100):
        word = aspera(
            "work_step_status/work_order.xml",
            work_order_id=order_id,
            step_name=step,
            status_only="true",
        )
        state = ET.fromstring(aspera(f"work_order_status/{order_id}")).find("status")
        if state is not None and state.get("state") not in ("In Progress", "Canceling"):
            break
        time.sleep(0.2)
    show("status_only", word)
    show("work_order_status", aspera(f"work_order_status/{order_id}"))
    xml = aspera("work_step_status/work_order.xml", work_order_id=order_id, step_name=step)
    show("work_step_status (XML)", xml)
    show(
        "work_step_status (JSON)",
        aspera("work_step_status/work_order.json", work_order_id=order_id, step_name=step),
    )
    step_id = ET.fromstring(xml).findtext("work-step/id") or ""
    show("output as text", aspera(f"work_step_status/{step_id}.txt", output_name="package_id"))
    index = aspera(
        "work_step_status/work_order.xml", work_order_id=order_id, step_name="Index nodes"
    )
    index_id = ET.fromstring(index).findtext("work-step/id") or ""
    show(
        "hash output (XML)", aspera(f"work_step_status/{index_id}.xml", output_name="IndexedTable")
    )
    show(
        "hash output (JSON)",
        aspera(f"work_step_status/{index_id}.json", output_name="IndexedTable"),
    )
    show("workflows_list", aspera("workflows_list"))
    show("wrong password", aspera("workflows_list.json", password="not-the-password"))


if __name__ == "__main__":
    main()
