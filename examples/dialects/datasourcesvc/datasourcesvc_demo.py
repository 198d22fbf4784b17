"""Talk to Legato as a datasourcesvc (Twinit Data Sources Service) client would.

Run against `make serve`:  python examples/dialects/datasourcesvc/datasourcesvc_demo.py
Base URL from LEGATO_URL (default http://127.0.0.1:8080); key from LEGATO_API_KEY or
.legato/admin.key. Applies the workflow next to this script, creates an orch run, waits for
it, then prints the list, the run, its log, a cancelled run and a deletion.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

URL = os.environ.get("LEGATO_URL", "http://127.0.0.1:8080").rstrip("/")
KEY = os.environ.get("LEGATO_API_KEY") or Path(".legato/admin.key").read_text().strip()
NS = os.environ.get("LEGATO_NAMESPACE", "default")
HERE = Path(__file__).resolve().parent


def call(method: str, path: str, body: Any = None, **query: Any) -> tuple[int, Any]:
    url = f"{URL}{path}?" + urllib.parse.urlencode({"nsfilter": NS, **query})
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def show(title: str, status: int, answer: Any) -> None:
    print(f"--- {title} ({status})")
    print(answer if isinstance(answer, str) else json.dumps(answer, indent=2))


def main() -> None:
    source = (HERE / "datasourcesvc-connector.yaml").read_text()
    req = urllib.request.Request(
        f"{URL}/api/v1/workflows/datasourcesvc-connector",
        data=source.encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/yaml"},
    )
    with urllib.request.urlopen(req) as resp:
        orchestrator = json.loads(resp.read())["uuid"]

    body = {
        "orchestratorId": orchestrator,
        "_actualparams": [{"sequence_type_id": "files", "params": {"_fileId": "file-1"}}],
    }
    status, run = call("POST", "/datasourcesvc/api/v1/orchrun", body)
    show("POST orchrun", status, run)
    run_id = run["id"]
    while True:
        status, [current] = call("GET", f"/datasourcesvc/api/v1/orchrun/{run_id}")
        if current["_status"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.3)
    show(f"GET orchrun/{run_id}", status, [current])
    show("GET orchrun", *call("GET", "/datasourcesvc/api/v1/orchrun", _pageSize=2, _offset=0))
    status, log = call("GET", f"/datasourcesvc/api/v1/orchrun/logs/{run_id}")
    show(f"GET orchrun/logs/{run_id}", status, log)

    _status, other = call("POST", "/datasourcesvc/api/v1/orchrun", {"orchestratorId": orchestrator})
    show(
        "PUT orchrun (cancel)",
        *call("PUT", f"/datasourcesvc/api/v1/orchrun/{other['id']}", {"id": other["id"]}),
    )
    show("DELETE orchrun", *call("DELETE", f"/datasourcesvc/api/v1/orchrun/{other['id']}"))
    show("GET without nsfilter", *call_without_nsfilter())


def call_without_nsfilter() -> tuple[int, Any]:
    req = urllib.request.Request(
        f"{URL}/datasourcesvc/api/v1/orchrun", headers={"Authorization": f"Bearer {KEY}"}
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


if __name__ == "__main__":
    main()
