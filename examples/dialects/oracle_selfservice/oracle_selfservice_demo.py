"""Create an execution through the Oracle self-service API and follow it level by level.

Run against ``make serve``::

    python examples/dialects/oracle_selfservice/oracle_selfservice_demo.py

This API takes a JWT (``Authorization: Bearer``) verified with a JWKS registered under a GUID
(``Identifier`` header). Pass your own as ``ORACLE_TOKEN`` and ``ORACLE_IDENTIFIER`` (the token
needs the scopes ``mcs:oci:api:User``, ``…:PrivilegedUser`` and ``…:Approver``). Without them,
and with PyJWT installed (it comes with Legato), the script registers a demo JWKS with the admin
key and signs its own token. Base URL from ``LEGATO_URL`` (default http://127.0.0.1:8080), admin
key from ``LEGATO_API_KEY`` or ``.legato/admin.key``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
URL = os.environ.get("LEGATO_URL", "http://127.0.0.1:8080").rstrip("/")
BASE = f"{URL}/selfservice/v1"
REQUESTOR = "EXADATA_CPU_SCALE"
SCOPES = "mcs:oci:api:User mcs:oci:api:PrivilegedUser mcs:oci:api:Approver"


def api_key() -> str:
    key = os.environ.get("LEGATO_API_KEY")
    if key:
        return key
    path = Path(".legato") / "admin.key"
    if path.exists():
        return path.read_text().strip()
    sys.exit("set LEGATO_API_KEY or run from the directory where `make serve` wrote .legato/")


def call(
    method: str, url: str, headers: dict[str, str], body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    for name, value in headers.items():
        request.add_header(name, value)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request) as response:
            text, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read(), exc.code
    return status, json.loads(text) if text else None


def show(title: str, status: int, body: Any) -> None:
    print(f"\n== {title}: HTTP {status}")
    if body is not None:
        print(json.dumps(body, indent=2))


def credentials(admin: dict[str, str]) -> dict[str, str]:
    token, identifier = os.environ.get("ORACLE_TOKEN"), os.environ.get("ORACLE_IDENTIFIER")
    if token and identifier:
        return {"Authorization": f"Bearer {token}", "Identifier": identifier}
    try:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        sys.exit(
            "this API needs a JWT: set ORACLE_TOKEN and ORACLE_IDENTIFIER (a JWKS registered "
            "with POST /api/v1/jwks), or run with Legato's Python, which has PyJWT"
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    identifier = str(uuid.uuid4())
    status, _ = call(
        "POST",
        f"{URL}/api/v1/jwks",
        admin,
        {
            "identifier": identifier,
            "keys": {"keys": [{**public, "kid": "demo", "use": "sig"}]},
            "role": "operator",
        },
    )
    print(f"demo JWKS registered under {identifier}: HTTP {status}")
    now = int(time.time())
    claims = {"sub": "demo@example.com", "iat": now, "exp": now + 600, "scope": SCOPES}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "demo"})
    return {"Authorization": f"Bearer {token}", "Identifier": identifier}


def main() -> None:
    admin = {"Authorization": f"Bearer {api_key()}"}
    source = (HERE / "exadata-cpu-scale.yaml").read_bytes()
    status, _ = call(
        "PUT",
        f"{URL}/api/v1/workflows/exadata-cpu-scale",
        {**admin, "Content-Type": "application/yaml"},
        raw=source,
    )
    print(f"workflow exadata-cpu-scale: HTTP {status}")
    auth = credentials(admin)

    status, created = call(
        "POST", f"{BASE}/executions", auth, {"requestor": REQUESTOR, "ocpus": 12}
    )
    show("create an execution", status, created)
    if status != 201:
        sys.exit(1)
    ref = created["executionId"]
    query = urllib.parse.urlencode({"id": ref, "requestor": REQUESTOR})

    while True:
        status, body = call("GET", f"{BASE}/executions/status?{query}", auth)
        show("executions/status", status, body)
        if status != 200 or body["response"][0]["status"] not in ("queued", "in-progress"):
            break
        time.sleep(1)

    path = f"{BASE}/executions/{ref}/status/details?requestor={REQUESTOR}"
    status, top = call("GET", path + "&stepId=0", auth)
    show("status/details, top level", status, top)
    for step in (top or {}).get("subSteps", []):
        if step["hasSubStep"]:
            status, body = call("GET", f"{path}&stepId={step['stepId']}", auth)
            show(f"status/details of '{step['name']}'", status, body)

    status, body = call("GET", f"{BASE}/executions/status?id={ref}", auth)
    show("without requestor (an error)", status, body)


if __name__ == "__main__":
    main()
