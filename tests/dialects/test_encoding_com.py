"""The Encoding.com dialect: the seed's GetStatus request and answer in XML and JSON, its
errors, and AddMedia / CancelMedia / GetMediaInfo / GetMediaList — on both stores."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import orjson
import pytest
from helpers import ADMIN_KEY, admin, wait_for

from legato import __version__
from legato.runtime import Legato

WORKFLOW = """
name: encoding-com
inputs:
  source: {type: string}
  notify: {type: string, default: ""}
  formats: {type: array, default: []}
steps:
  - id: download
    name: Download source
    uses: python
    with: {function: "encoding_com_steps:download", source: "${{ inputs.source }}"}
  - id: encode
    name: Encode
    needs: [download]
    foreach: ${{ inputs.formats }}
    uses: python
    with: {function: "encoding_com_steps:encode", format: "${{ item }}"}
outputs:
  duration: ${{ steps.download.outputs.duration }}
  bitrate: ${{ steps.download.outputs.bitrate }}
"""

FORMATS = [
    {
        "output": "mp4",
        "video_codec": "libx264",
        "destination": ["ftp://out.example/a.mp4", "ftp://denied.example/a.mp4"],
    },
    {"output": "webm"},
]
DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
MEDIA_FIELDS = [
    "id",
    "userid",
    "version",
    "sourcefile",
    "status",
    "prevstatus",
    "notifyurl",
    "created",
    "started",
    "finished",
    "downloaded",
    "uploaded",
    "time_left",
    "progress",
    "time_left_current",
    "progress_current",
    "format",
    "format",
]
FORMAT_HEAD = ["id", "status", "created", "started", "finished"]


async def _user(legato: Legato) -> tuple[str, str]:
    return str((await admin(legato)).key_id), ADMIN_KEY


def _xml_query(action: str, userid: str, userkey: str, **fields: str) -> str:
    extra = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        '<?xml version="1.0"?>\n<query><userid>'
        f"{userid}</userid><userkey>{userkey}</userkey><action>{action}</action>{extra}</query>"
    )


def _json_query(action: str, userid: str, userkey: str, **fields: Any) -> str:
    query = {"userid": userid, "userkey": userkey, "action": action, **fields}
    return orjson.dumps({"query": query}).decode()


async def _post_xml(api: httpx.AsyncClient, body: str, path: str = "/") -> ET.Element:
    response = await api.post(path, data={"xml": body})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0"?>')
    return ET.fromstring(response.content)


async def _post_json(api: httpx.AsyncClient, body: str, path: str = "/") -> Any:
    response = await api.post(path, data={"json": body})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def _tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


async def _finished_media(api: httpx.AsyncClient, engine: Legato) -> int:
    """The seed's GetStatus scenario: a finished media with two formats, one of them saved to
    two destinations (one failed), the other left on temporary S3 and CDN links."""
    put = await api.put(
        "/api/v1/workflows/encoding-com",
        content=WORKFLOW,
        headers={"Content-Type": "application/yaml"},
    )
    assert put.status_code in (200, 201)
    userid, userkey = await _user(engine)
    query = _json_query(
        "AddMedia",
        userid,
        userkey,
        source="https://in.example/movie.mov",
        notify="https://client.example/notify",
        format=FORMATS,
    )
    answer = await _post_json(api, query)
    assert list(answer["response"]) == ["message", "MediaID"]
    assert answer["response"]["message"] == "Added"
    media_id = int(answer["response"]["MediaID"])
    run = await wait_for(engine, media_id)
    assert run["status"] == "SUCCEEDED", run
    return media_id


def _check_media_xml(media: ET.Element, media_id: int, userid: str) -> None:
    assert _tags(media) == MEDIA_FIELDS
    text = {child.tag: child.text or "" for child in media if child.tag != "format"}
    assert text["id"] == str(media_id)
    assert text["userid"] == userid
    assert text["version"] == __version__
    assert text["sourcefile"] == "https://in.example/movie.mov"
    assert (text["status"], text["prevstatus"]) == ("Finished", "Processing")
    assert text["notifyurl"] == "https://client.example/notify"
    for name in ("created", "started", "finished", "downloaded", "uploaded"):
        assert DATE.match(text[name]), (name, text[name])
    assert (text["time_left"], text["progress"]) == ("0", "100.0")
    assert (text["time_left_current"], text["progress_current"]) == ("0", "100.0")


async def test_get_status_xml_as_the_seed(api: httpx.AsyncClient, engine: Legato) -> None:
    media_id = await _finished_media(api, engine)
    userid, userkey = await _user(engine)
    query = _xml_query(
        "GetStatus",
        userid,
        userkey,
        mediaid=str(media_id),
        include_task_status="yes",
        include_qc_task_status="no",
    )
    media = await _post_xml(api, query)
    assert media.tag == "response"
    _check_media_xml(media, media_id, userid)
    # one format per <format> block AddMedia sent; the download step is no format
    mp4, webm = media.findall("format")
    state = ["state"] * 4  # the shared download step's events, then the format's own
    assert _tags(mp4) == [
        *FORMAT_HEAD,
        "output",
        "video_codec",
        "destination",
        "destination_status",
        "destination",
        "destination_status",
        "task_status",
    ]
    assert _tags(webm) == [
        *FORMAT_HEAD,
        "output",
        "s3_destination",
        "cf_destination",
        "task_status",
    ]
    for fmt in (mp4, webm):
        assert fmt.findtext("status") == "Finished"
        assert int(fmt.findtext("id") or 0) > 0
        for name in ("created", "started", "finished"):
            assert DATE.match(fmt.findtext(name) or "")
        states = fmt.find("task_status")
        assert states is not None and _tags(states) == state
        for st in states:
            assert _tags(st) == ["time", "message"]
            assert DATE.match(st.findtext("time") or "")
        assert "started" in (states[0].findtext("message") or "")
        assert "succeeded" in (states[3].findtext("message") or "")
    assert [e.text for e in mp4.findall("destination")] == FORMATS[0]["destination"]
    assert [e.text for e in mp4.findall("destination_status")] == [
        "Saved",
        "Error (access denied)",
    ]
    assert (mp4.findtext("output"), mp4.findtext("video_codec")) == ("mp4", "libx264")
    assert webm.findtext("s3_destination") == "https://s3.example/tmp/out.webm"
    assert webm.findtext("cf_destination") == "https://cdn.example/tmp/out.webm"

    without = await _post_xml(api, _xml_query("GetStatus", userid, userkey, mediaid=str(media_id)))
    assert [f.find("task_status") for f in without.findall("format")] == [None, None]


async def test_get_status_json_as_the_seed(api: httpx.AsyncClient, engine: Legato) -> None:
    media_id = await _finished_media(api, engine)
    userid, userkey = await _user(engine)
    query = _json_query(
        "GetStatus", userid, userkey, mediaid=str(media_id), include_task_status="yes"
    )
    media = (await _post_json(api, query))["response"]
    assert list(media) == MEDIA_FIELDS[:-1]
    assert media["id"] == str(media_id)
    assert media["status"] == "Finished"
    assert all(isinstance(v, str) for k, v in media.items() if k != "format")
    mp4, webm = media["format"]
    assert list(mp4) == [
        *FORMAT_HEAD,
        "output",
        "video_codec",
        "destination",
        "destination_status",
        "task_status",
    ]
    assert mp4["destination"] == FORMATS[0]["destination"]
    assert mp4["destination_status"] == ["Saved", "Error (access denied)"]
    assert list(webm) == [*FORMAT_HEAD, "output", "s3_destination", "cf_destination", "task_status"]
    for fmt in (mp4, webm):
        states = fmt["task_status"]["state"]
        assert [list(s) for s in states] == [["time", "message"]] * 4
        assert all(isinstance(s["time"], str) and DATE.match(s["time"]) for s in states)


async def test_json_one_item_lists_and_unset_dates(api: httpx.AsyncClient, engine: Legato) -> None:
    await api.put(
        "/api/v1/workflows/encoding-com",
        content=WORKFLOW,
        headers={"Content-Type": "application/yaml"},
    )
    userid, userkey = await _user(engine)
    one = [{"output": "mp4", "destination": "ftp://out.example/a.mp4", "sleep": 30}]
    added = await _post_json(
        api, _json_query("AddMedia", userid, userkey, source="s3://in/a.mov", format=one)
    )
    media_id = int(added["response"]["MediaID"])
    await wait_for(engine, media_id, statuses={"RUNNING"})
    await _wait_step_running(engine, media_id)
    media = (
        await _post_json(api, _json_query("GetStatus", userid, userkey, mediaid=str(media_id)))
    )["response"]
    assert media["status"] in ("Processing", "Saving")
    assert media["finished"] == "0000-00-00 00:00:00"
    assert media["uploaded"] == "0000-00-00 00:00:00"
    assert media["time_left_current"] != "0"
    encoding = media["format"]  # one format: an object, as the vendor's JSON
    assert encoding["status"] == "Processing" and encoding["output"] == "mp4"
    assert encoding["destination"] == "ftp://out.example/a.mp4"
    assert encoding["destination_status"] == ""  # not saved yet
    assert encoding["finished"] == "0000-00-00 00:00:00"
    cancel = await _post_json(api, _json_query("CancelMedia", userid, userkey, mediaid=media_id))
    assert cancel == {"response": {"message": "Deleted"}}
    run = await wait_for(engine, media_id)
    assert run["status"] == "CANCELED"
    status = await _post_xml(api, _xml_query("GetStatus", userid, userkey, mediaid=str(media_id)))
    assert status.findtext("status") == "Error"
    again = await _post_json(api, _json_query("CancelMedia", userid, userkey, mediaid=media_id))
    assert again == {"response": {"errors": {"error": f"Media ID {media_id} has already finished"}}}


async def _wait_step_running(engine: Legato, media_id: int) -> None:
    p = await admin(engine)
    for _ in range(200):
        run = await engine.runs.get(p, media_id)
        if run["steps"][1]["status"] == "RUNNING":
            return
        await engine.runs.wait_for_change(media_id, 0.1)
    raise AssertionError("the encode step did not start")


async def test_several_media_ids_answer_one_job_each(
    api: httpx.AsyncClient, engine: Legato
) -> None:
    first = await _finished_media(api, engine)
    userid, userkey = await _user(engine)
    second = (
        await _post_json(
            api,
            _json_query("AddMedia", userid, userkey, source="s3://in/b.mov", format=FORMATS[1]),
        )
    )["response"]["MediaID"]
    await wait_for(engine, int(second))
    answer = await _post_xml(
        api, _xml_query("GetStatus", userid, userkey, mediaid=f"{first}, {second}"), "/encoding/"
    )
    assert _tags(answer) == ["job", "job"]
    assert [job.findtext("id") for job in answer] == [str(first), second]
    _check_media_xml(answer[0], first, userid)
    extended = await _post_json(
        api, _json_query("GetStatus", userid, userkey, mediaid=second, extended="yes")
    )
    job = extended["response"]["job"]
    assert job["id"] == second
    assert job["sourcefile"] == "s3://in/b.mov"
    assert job["format"]["output"] == "webm" and int(job["format"]["id"]) > 0


async def test_media_info_and_list(api: httpx.AsyncClient, engine: Legato) -> None:
    ids = [await _finished_media(api, engine) for _ in range(2)]
    userid, userkey = await _user(engine)
    info = await _post_xml(api, _xml_query("GetMediaInfo", userid, userkey, mediaid=str(ids[0])))
    assert {e.tag: e.text for e in info} == {"duration": "00:01:30", "bitrate": "1000k"}
    listed = await _post_xml(
        api, _xml_query("GetMediaList", userid, userkey, page="1", per_page="5", order="asc")
    )
    assert _tags(listed) == ["pagination", "media", "media"]
    pagination = listed.find("pagination")
    assert pagination is not None
    assert [(e.tag, e.text) for e in pagination] == [
        ("per_page", "5"),
        ("page", "1"),
        ("count", "2"),
        ("total", "2"),
        ("pages", "1"),
    ]
    media = listed.findall("media")
    assert [m.findtext("mediaid") for m in media] == [str(i) for i in ids]
    assert _tags(media[0]) == [
        "mediafile",
        "mediaid",
        "mediastatus",
        "createdate",
        "startdate",
        "finishdate",
    ]
    assert media[0].findtext("mediastatus") == "Finished"
    assert media[0].findtext("mediafile") == "https://in.example/movie.mov"
    second_page = await _post_json(
        api, _json_query("GetMediaList", userid, userkey, page="2", per_page="5")
    )
    assert second_page == {
        "response": {
            "pagination": {
                "per_page": "5",
                "page": "2",
                "count": "0",
                "total": "2",
                "pages": "1",
            }
        }
    }


def _error(message: str) -> bytes:
    return (
        b'<?xml version="1.0"?>\n<response>\n    <errors>\n        <error>'
        + message.encode()
        + b"</error>\n    </errors>\n</response>\n"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<query><action>Nope</action></query>", "Unknown action 'Nope'"),
        ("<query><userid>1</userid></query>", "Field 'action' is required"),
        ("<query><action>GetStatus</action></query>", "Wrong user id or key"),
        ("<query", "Malformed XML: the query is not well-formed XML"),
        (
            '<!DOCTYPE q [<!ENTITY a "b">]><query><action>&a;</action></query>',
            "Malformed XML: the query is not well-formed XML",
        ),
        ("<other/>", "Malformed XML: the root element must be 'query'"),
        ("", "No query: send it as the form parameter 'xml' or 'json'"),
    ],
)
async def test_errors_without_credentials(api: httpx.AsyncClient, body: str, message: str) -> None:
    response = await api.post("/", content=body)
    assert response.status_code == 200
    if message == "Wrong user id or key":
        message += ": 'userid' and 'userkey' are required"
    assert response.content == _error(message)


async def test_errors_with_credentials(api: httpx.AsyncClient, engine: Legato) -> None:
    userid, userkey = await _user(engine)

    async def error(query: str) -> str:
        response = await api.post("/encoding/", content=query)
        assert response.status_code == 200
        body = response.json() if query.startswith("{") else None
        if body is not None:
            assert list(body["response"]) == ["errors"]
            return str(body["response"]["errors"]["error"])
        root = ET.fromstring(response.content)
        assert _tags(root) == ["errors"] and _tags(root[0]) == ["error"]
        return root[0][0].text or ""

    assert await error(_xml_query("GetStatus", userid, "lg_wrong")) == "Wrong user id or key"
    assert await error(_xml_query("GetStatus", "999", userkey)) == "Wrong user id or key"
    assert await error(_xml_query("GetStatus", userid, userkey)) == "Field 'mediaid' is required"
    assert (
        await error(_xml_query("GetStatus", userid, userkey, mediaid="abc"))
        == "Wrong mediaid 'abc': a positive integer is expected"
    )
    assert (
        await error(_json_query("GetStatus", userid, userkey, mediaid="424242"))
        == "Media ID 424242 not found"
    )
    assert await error('{"query": ') == "Malformed JSON: the query is not valid JSON"
    assert (
        await error('{"other": {}}')
        == 'Malformed JSON: the query must be an object {"query": {...}}'
    )
    assert await error(_json_query("AddMedia", userid, userkey)) == "Field 'source' is required"
    assert (
        await error(_json_query("AddMedia", userid, userkey, source="s3://a"))
        == "Field 'format' is required"
    )
    assert (
        await error(_json_query("AddMedia", userid, userkey, source="s3://a", format={}))
        == "No workflow 'encoding-com' in namespace 'default' to process media"
    )
    assert (
        await error(_json_query("GetMediaList", userid, userkey, per_page="2"))
        == "Wrong per_page '2': a number from 5 to 100 is expected"
    )


async def test_a_notify_url_to_a_private_address_is_refused(
    api: httpx.AsyncClient, engine: Legato
) -> None:
    put = await api.put(
        "/api/v1/workflows/encoding-com",
        content=WORKFLOW,
        headers={"Content-Type": "application/yaml"},
    )
    assert put.status_code in (200, 201)
    userid, userkey = await _user(engine)
    query = _json_query(
        "AddMedia",
        userid,
        userkey,
        source="s3://a",
        notify="http://127.0.0.1:8080/",
        format=FORMATS,
    )
    response = await api.post("/", content=query)
    assert response.status_code == 200
    assert response.json() == {
        "response": {
            "errors": {
                "error": "destination 127.0.0.1 is not allowed: 127.0.0.1 is a loopback address, "
                "which outbound requests may not reach"
            }
        }
    }
    assert (await api.get("/api/v1/runs")).json()["runs"] == []


async def test_another_tenants_media_is_not_found(api: httpx.AsyncClient, engine: Legato) -> None:
    media_id = await _finished_media(api, engine)
    made = await api.post("/api/v1/namespaces", json={"name": "other"})
    assert made.status_code == 201, made.text
    key = await api.post(
        "/api/v1/keys", json={"name": "o", "role": "operator", "namespace": "other"}
    )
    assert key.status_code == 201, key.text
    other = key.json()
    answer = await _post_json(
        api, _json_query("GetStatus", str(other["id"]), other["key"], mediaid=str(media_id))
    )
    assert answer == {"response": {"errors": {"error": f"Media ID {media_id} not found"}}}
