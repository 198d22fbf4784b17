"""Talk to Legato as an Encoding.com client would: AddMedia, GetStatus (XML and JSON) until
the media is finished, GetMediaList and GetMediaInfo. Standard library only.

    make serve                     # in another shell
    python examples/dialects/encoding_com/encoding_com_demo.py

LEGATO_URL (default http://127.0.0.1:8080) and LEGATO_API_KEY (default: .legato/admin.key)
name the server and an admin key; the script applies the workflow and creates an operator key
whose id and secret are the Encoding.com ``userid`` and ``userkey``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
URL = os.environ.get("LEGATO_URL", "http://127.0.0.1:8080").rstrip("/")


def admin_key() -> str:
    key = os.environ.get("LEGATO_API_KEY")
    if key:
        return key
    return Path(".legato/admin.key").read_text().strip()


def native(method: str, path: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(
        URL + path,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {admin_key()}", "Content-Type": content_type},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def encoding(name: str, query: str) -> str:
    """POST the query as the form parameter ``xml`` or ``json``, as that API's clients do."""
    form = urllib.parse.urlencode({name: query}).encode()
    with urllib.request.urlopen(urllib.request.Request(URL + "/", data=form)) as response:
        return response.read().decode()


def main() -> None:
    workflow = (HERE / "encoding-com.yaml").read_bytes()
    native("PUT", "/api/v1/workflows/encoding-com", workflow, "application/yaml")
    key = native(
        "POST",
        "/api/v1/keys",
        json.dumps({"name": "encoding.com client", "role": "operator"}).encode(),
        "application/json",
    )
    userid, userkey = str(key["id"]), key["key"]

    add = f"""<?xml version="1.0"?>
<query>
    <userid>{userid}</userid>
    <userkey>{userkey}</userkey>
    <action>AddMedia</action>
    <source>https://media.example/in/movie.mov</source>
    <notify>https://client.example/encoding-notify</notify>
    <format><output>mp4</output><destination>ftp://out.example/movie.mp4</destination></format>
    <format><output>webm</output><destination>ftp://out.example/movie.webm</destination></format>
</query>"""
    answer = encoding("xml", add)
    print("AddMedia ->\n" + answer)
    media_id = answer.split("<MediaID>")[1].split("</MediaID>")[0]

    status_query = {
        "query": {
            "userid": userid,
            "userkey": userkey,
            "action": "GetStatus",
            "mediaid": media_id,
            "include_task_status": "yes",
        }
    }
    while True:
        status = json.loads(encoding("json", json.dumps(status_query)))["response"]
        print(
            f"GetStatus -> {status['status']} {status['progress']}% ({status['time_left']} s left)"
        )
        if status["status"] in ("Finished", "Error"):
            break
        time.sleep(1)

    xml_status = f"""<?xml version="1.0"?>
<query><userid>{userid}</userid><userkey>{userkey}</userkey><action>GetStatus</action>
<mediaid>{media_id}</mediaid><include_task_status>yes</include_task_status></query>"""
    print("GetStatus (XML) ->\n" + encoding("xml", xml_status))
    listing = f"""<?xml version="1.0"?>
<query><userid>{userid}</userid><userkey>{userkey}</userkey><action>GetMediaList</action>
<page>1</page><per_page>5</per_page></query>"""
    print("GetMediaList ->\n" + encoding("xml", listing))
    wrong = (
        f"<query><userid>{userid}</userid><userkey>nope</userkey><action>GetStatus</action></query>"
    )
    print("A wrong key ->\n" + encoding("xml", wrong))


if __name__ == "__main__":
    main()
