"""Encoding.com's Python client libraries from PyPI against a real Legato server:
``encodingcom`` 0.1.3 (``Encoding``, its ``Poller`` and helpers) and ``encodingcom-py3``
0.0.5. Each is pointed at the local server through its own constructor or attributes and
driven through its public methods; the tests assert on what the library returns.

Both distributions install a module ``encodingcom.encoding``, so they cannot share one
environment: ``make`` installs the second into ``.venv/encodingcom-py3`` (see the Makefile)
and :func:`py3_library` loads it from there under its own name."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from encodingcom.encoding import Encoding
from encodingcom.encoding_utils import get_latest_media, get_oldest_media
from encodingcom.exception import EncodingErrors
from encodingcom.poller import Poller
from helpers import ADMIN_KEY, admin, wait_for

from legato.runtime import Legato

PY3_LIBRARY = Path(sys.prefix) / "encodingcom-py3" / "encodingcom" / "encoding.py"

# The documented shape: download, encode each format (foreach), save.
WORKFLOW = """
name: encoding-com
inputs:
  source: {type: string}
  notify: {type: string, default: ""}
  formats: {type: array, default: []}
  hold: {type: string, default: 0s}
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
  - id: save
    name: Save outputs
    needs: [encode]
    uses: sleep
    with: {duration: "${{ inputs.hold }}"}
outputs:
  duration: ${{ steps.download.outputs.duration }}
  bitrate: ${{ steps.download.outputs.bitrate }}
"""

MP4 = {
    "output": "mp4",
    "video_codec": "libx264",
    "destination": ["ftp://out.example/a.mp4", "ftp://denied.example/a.mp4"],
}
WEBM = {"output": "webm", "destination": "ftp://out.example/a.webm"}
SOURCE = "https://in.example/movie.mov"


def py3_library() -> ModuleType:
    if not PY3_LIBRARY.exists():
        pytest.fail(f"encodingcom-py3 is not installed at {PY3_LIBRARY.parent}: run `make`")
    spec = importlib.util.spec_from_file_location("encodingcom_py3_encoding", PY3_LIBRARY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def client(live_url: str, engine: Legato, api: httpx.AsyncClient) -> Encoding:
    """``encodingcom`` 0.1.3 on the live server, as the admin key."""
    r = await api.put(
        "/api/v1/workflows/encoding-com",
        content=WORKFLOW,
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code in (200, 201), r.text
    encoding = Encoding(str((await admin(engine)).key_id), ADMIN_KEY, https=False)
    encoding.url = live_url  # the library's own attribute for its endpoint
    return encoding


async def call(method: Any, *args: Any, **kwargs: Any) -> Any:
    """The libraries block on their HTTP call: run them off the server's event loop."""
    return await asyncio.to_thread(method, *args, **kwargs)


async def add(client: Encoding, *formats: dict[str, Any]) -> int:
    status, answer = await call(client.add_media, source=[SOURCE], format=list(formats))
    assert status == 200 and answer["response"]["message"] == "Added", answer
    return int(answer["response"]["MediaID"])


async def test_add_media_poll_and_get_status(client: Encoding, engine: Legato) -> None:
    media_id = await add(client, MP4, WEBM)
    final = await call(Poller.poll_till_status, client, str(media_id), interval=0.05)
    assert final["status"] == "Finished" and final["id"] == str(media_id)

    status, answer = await call(client.get_status, mediaid=str(media_id))
    assert status == 200
    media = answer["response"]
    assert (media["status"], media["sourcefile"]) == ("Finished", SOURCE)
    # exactly the two formats AddMedia sent, in order, each with its own destinations
    mp4, webm = media["format"]
    assert [f["status"] for f in (mp4, webm)] == ["Finished", "Finished"]
    assert (mp4["output"], mp4["video_codec"], webm["output"]) == ("mp4", "libx264", "webm")
    assert mp4["destination"] == MP4["destination"]
    assert mp4["destination_status"] == ["Saved", "Error (access denied)"]
    assert (webm["destination"], webm["destination_status"]) == (WEBM["destination"], "Saved")
    assert mp4["id"] != webm["id"]
    assert "task_status" not in mp4

    _, answer = await call(
        client.get_status, mediaid=str(media_id), extended="yes", include_task_status="yes"
    )
    job = answer["response"]["job"]  # extended: the media inside a <job>
    assert job["id"] == str(media_id) and len(job["format"]) == 2
    states = job["format"][0]["task_status"]["state"]
    assert len(states) == 6  # download, the format's encode, save: started and ended each

    other = await add(client, WEBM)
    await wait_for(engine, other)
    _, answer = await call(client.get_status, mediaid=[str(media_id), str(other)])
    jobs = answer["response"]["job"]  # several ids: one job each, in the order asked
    assert [j["id"] for j in jobs] == [str(media_id), str(other)]
    assert jobs[1]["format"]["output"] == "webm"  # one format: an object, as the vendor's


async def test_media_info_and_list(client: Encoding, engine: Legato) -> None:
    ids = [await add(client, WEBM) for _ in range(3)]
    for media_id in ids:
        await wait_for(engine, media_id)
    _, info = await call(client.get_media_info, False, mediaid=str(ids[0]))
    assert info == {"response": {"duration": "00:01:30", "bitrate": "1000k"}}
    _, info = await call(client.get_media_info, True, mediaid=str(ids[0]))
    extended = info["response"]
    assert extended["id"] == str(ids[0]) and extended["status"] == "Finished"
    assert extended["mediainfo"] == {"duration": "00:01:30", "bitrate": "1000k"}

    _, listed = await call(client.get_media_list)
    assert [m["mediaid"] for m in listed["response"]["media"]] == [str(i) for i in ids]
    assert (await call(get_latest_media, client))["mediaid"] == str(ids[-1])
    assert (await call(get_oldest_media, client))["mediaid"] == str(ids[0])
    _, one = await call(client.get_media_list, mediaid=str(ids[1]))
    assert [m["mediaid"] for m in one["response"]["media"]] == [str(ids[1])]


async def test_cancel_stop_and_restart(client: Encoding, engine: Legato) -> None:
    slow = {**WEBM, "sleep": 30}
    cancelled = await add(client, slow)
    await wait_for(engine, cancelled, statuses={"RUNNING"})
    _, answer = await call(client.cancel_media, mediaid=[str(cancelled)])
    assert answer == {"response": {"message": "Deleted"}}
    assert (await wait_for(engine, cancelled))["status"] == "CANCELED"

    stopped = await add(client, slow)
    await wait_for(engine, stopped, statuses={"RUNNING"})
    _, answer = await call(client.stop_media, mediaid=str(stopped))
    assert answer == {"response": {"message": "Stopped"}}
    await wait_for(engine, stopped)
    final = await call(Poller.poll_till_status, client, str(stopped), interval=0.05)
    assert final["status"] == "Error"

    failing = await add(client, {**WEBM, "fail": True})
    assert (await wait_for(engine, failing))["status"] == "FAILED"
    _, answer = await call(client.get_status, mediaid=str(failing), include_task_status="yes")
    assert answer["response"]["status"] == "Error"
    failed_format = answer["response"]["format"]
    assert failed_format["status"] == "Error"
    _, answer = await call(client.restart_media, mediaid=str(failing))
    assert answer == {"response": {"message": "Restarted"}}
    run = await wait_for(engine, failing)
    assert run["status"] == "FAILED"
    _, answer = await call(client.get_status, mediaid=str(failing), include_task_status="yes")
    before = failed_format["task_status"]["state"]
    after = answer["response"]["format"]["task_status"]["state"]
    assert len(after) > len(before)  # the media ran again
    messages = [state["message"] for state in after]
    assert messages.count("Save outputs: Skipped: upstream encode did not succeed") == 2

    with pytest.raises(EncodingErrors, match=f"Media ID {cancelled} has already finished"):
        await call(client.cancel_media, mediaid=str(cancelled))


async def test_errors_raise_the_library_exception(client: Encoding) -> None:
    with pytest.raises(EncodingErrors, match="Media ID 424242 not found"):
        await call(client.get_status, mediaid="424242")
    with pytest.raises(EncodingErrors, match="Wrong mediaid 'abc'"):
        await call(client.get_status, mediaid="abc")
    finished = await add(client, WEBM)
    with pytest.raises(EncodingErrors, match="can not be restarted"):
        await call(Poller.poll_till_status, client, str(finished), interval=0.05)
        await call(client.restart_media, mediaid=str(finished))
    client.user_key = "lg_wrong_key"
    with pytest.raises(EncodingErrors, match="Wrong user id or key"):
        await call(client.get_media_list)


async def test_media_is_saving_while_the_shared_save_step_holds(
    live_url: str, engine: Legato, api: httpx.AsyncClient
) -> None:
    """The workflow's save step (after the formats) reads as Saving, for the media and for
    each format whose own encode is done."""
    holding = WORKFLOW.replace(
        "hold: {type: string, default: 0s}", "hold: {type: string, default: 30s}"
    )
    r = await api.put(
        "/api/v1/workflows/encoding-com",
        content=holding,
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code in (200, 201), r.text
    client = Encoding(str((await admin(engine)).key_id), ADMIN_KEY, https=False)
    client.url = live_url
    media_id = await add(client, MP4, WEBM)
    p = await admin(engine)
    for _ in range(400):
        run = await engine.runs.get(p, media_id)
        if next(s for s in run["steps"] if s["key"] == "save")["status"] in ("READY", "RUNNING"):
            break
        await engine.runs.wait_for_change(media_id, 0.1)
    _, answer = await call(client.get_status, mediaid=str(media_id))
    media = answer["response"]
    assert media["status"] == "Saving"
    assert [f["status"] for f in media["format"]] == ["Saving", "Saving"]
    assert media["format"][1]["destination_status"] == "Saved"  # its encode reported it
    await call(client.cancel_media, mediaid=str(media_id))
    await wait_for(engine, media_id)


async def test_the_py3_library(live_url: str, client: Encoding, engine: Legato) -> None:
    library = py3_library()
    host = live_url.removeprefix("http://")
    encoding = library.Encoding(client.user_id, client.user_key, url=host)

    added = json.loads(
        await call(encoding.add_media, source=[SOURCE], formats=[MP4, WEBM], instant="yes")
    )
    assert added["response"]["message"] == "Added"
    media_id = added["response"]["MediaID"]
    await wait_for(engine, int(media_id))

    status = json.loads(await call(encoding.get_status, ids=[media_id]))["response"]
    assert status["status"] == "Finished"
    assert [f["output"] for f in status["format"]] == ["mp4", "webm"]
    extended = json.loads(await call(encoding.get_status, ids=[media_id], extended="yes"))
    assert extended["response"]["job"]["id"] == media_id

    info = json.loads(await call(encoding.get_media_info, ids=[media_id]))
    assert info == {"response": {"duration": "00:01:30", "bitrate": "1000k"}}
    ex = json.loads(await call(encoding.get_media_info, action="GetMediaInfoEx", ids=[media_id]))
    assert ex["response"]["status"] == "Finished"

    missing = json.loads(await call(encoding.get_status, ids=["424242"]))
    assert missing == {"response": {"errors": {"error": "Media ID 424242 not found"}}}
