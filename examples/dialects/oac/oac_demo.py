"""Start two workflows through the Oracle Analytics Cloud work request API and follow them.

Run against ``make serve``::

    python examples/dialects/oac/oac_demo.py

Base URL from ``LEGATO_URL`` (default http://127.0.0.1:8080), admin key from
``LEGATO_API_KEY`` or ``.legato/admin.key``. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
URL = os.environ.get("LEGATO_URL", "http://127.0.0.1:8080").rstrip("/")
OAC = f"{URL}/api/20210901"


def api_key() -> str:
    key = os.environ.get("LEGATO_API_KEY")
    if key:
        return key
    path = Path(".legato") / "admin.key"
    if path.exists():
        return path.read_text().strip()
    sys.exit("set LEGATO_API_KEY or run from the directory where `make serve` wrote .legato/")


KEY = api_key()


def call(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            status, answer_headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, answer_headers = exc.read(), exc.code, dict(exc.headers)
    return status, answer_headers, json.loads(raw) if raw else None


def show(title: str, status: int, body: Any) -> None:
    print(f"\n== {title}: HTTP {status}")
    if body is not None:
        print(json.dumps(body, indent=2))


def main() -> None:
    for name in ("oac-snapshot", "oac-dataset"):
        source = (HERE / f"{name}.yaml").read_bytes()
        status, _, _ = call(
            "PUT", f"{URL}/api/v1/workflows/{name}", source, {"Content-Type": "application/yaml"}
        )
        print(f"workflow {name}: HTTP {status}")

    ids = []
    for name in ("oac-snapshot", "oac-dataset"):
        status, headers, _ = call(
            "POST",
            f"{OAC}/workflows/{name}/actions/run",
            b"{}",
            {"Content-Type": "application/json"},
        )
        work_request = headers.get("oa-work-request-id") or headers.get("Oa-Work-Request-Id")
        print(f"started {name}: HTTP {status}, oa-work-request-id: {work_request}")
        ids.append(work_request)

    for work_request in ids:
        while True:
            status, _, item = call("GET", f"{OAC}/workRequests/{work_request}")
            if status != 200 or item["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
                break
            print(f"  {work_request}: {item['status']} {item['percentComplete']}%")
            time.sleep(0.5)
        show(f"GET workRequests/{work_request}", status, item)

    status, headers, page = call("GET", f"{OAC}/workRequests?limit=2")
    show("GET workRequests?limit=2", status, page)
    print("opc-next-page:", headers.get("opc-next-page") or headers.get("Opc-Next-Page"))
    status, _, logs = call("GET", f"{OAC}/workRequests/{ids[0]}/logs")
    show(f"GET workRequests/{ids[0]}/logs", status, logs)
    status, _, error = call("GET", f"{OAC}/workRequests/no-such-id")
    show("GET workRequests/no-such-id", status, error)


if __name__ == "__main__":
    main()
