"""The example workflows under ``examples/`` run as their README promises: on both stores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import admin, apply, start, steps_by_key, wait_for
from sqlalchemy import select

from legato.model.definition_loading import load_definition
from legato.runtime import Legato
from legato.store.tables import resources

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))

MEDIA_ID = "media-d9fa17a7da"
SOURCE_PATH = f"/srv/media/{MEDIA_ID}/source.mov"
MEDIA_FILES = {
    "mp4": f"/srv/media/{MEDIA_ID}/source.mp4",
    "webm": f"/srv/media/{MEDIA_ID}/source.webm",
    "hls": f"/srv/media/{MEDIA_ID}/source/hls/index.m3u8",
}
POST_URL = "https://faspex.example/aspera/faspex/packages/"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_definition_loads(path: Path) -> None:
    definition = load_definition(path.read_text())
    assert definition.name == path.stem
    assert definition.description


def test_the_main_examples_exist() -> None:
    names = {p.stem for p in EXAMPLE_FILES}
    assert {
        "hello",
        "media-pipeline",
        "faspex-delivery",
        "ops-change",
        "ops-change-execution",
    } <= names
    assert (EXAMPLES / "README.md").is_file()


async def _apply_examples(engine: Legato) -> None:
    for path in EXAMPLE_FILES:
        await apply(engine, path.read_text())


async def _run(engine: Legato, workflow: str, **inputs: Any) -> dict[str, Any]:
    """Start ``workflow`` and answer the finished run."""
    run = await start(engine, workflow, **inputs)
    final: dict[str, Any] = await wait_for(engine, run["id"], timeout=20)
    return final


async def _resources(engine: Legato, run_id: int) -> list[tuple[str, str, str]]:
    async with engine.db.read() as conn:
        rows = await conn.execute(
            select(resources.c.type, resources.c.resource_id, resources.c.action_result)
            .where(resources.c.run_id == run_id)
            .order_by(resources.c.id)
        )
        return sorted((r.type, r.resource_id, r.action_result) for r in rows)


async def _log_messages(engine: Legato, run_id: int, step: str) -> list[str]:
    return [
        line["message"] for line in await engine.runs.logs(await admin(engine), run_id, step=step)
    ]


def _all_succeeded(run: dict[str, Any]) -> None:
    assert run["status"] == "SUCCEEDED", run
    assert {s["key"]: s["status"] for s in run["steps"]} == {
        s["key"]: "SUCCEEDED" for s in run["steps"]
    }
    assert run["error"] is None
    assert run["progress"]["percent"] == 100.0


async def test_hello(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(engine, "hello")
    _all_succeeded(run)
    assert [s["key"] for s in run["steps"]] == ["greet", "announce"]
    assert run["inputs"] == {"name": "world"}
    assert run["outputs"] == {"greeting": "Hello, world!", "announcement": "HELLO, WORLD!"}
    steps = steps_by_key(run)
    assert steps["greet"]["outputs"] == {"greeting": "Hello, world!"}
    assert steps["announce"]["outputs"] == {"announcement": "HELLO, WORLD!", "characters": 13}
    assert steps["announce"]["kind"] == "shell"
    assert await _log_messages(engine, run["id"], "greet") == ["Greeting world"]
    assert await _log_messages(engine, run["id"], "announce") == [
        "announcing: Hello, world!",
        '{"announcement": "HELLO, WORLD!", "characters": 13}',
    ]

    named = await _run(engine, "hello", name="Ada")
    assert named["outputs"] == {"greeting": "Hello, Ada!", "announcement": "HELLO, ADA!"}


async def test_media_pipeline(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(engine, "media-pipeline")
    _all_succeeded(run)
    assert [s["key"] for s in run["steps"]] == [
        "fetch",
        "transcode_mp4",
        "transcode_webm",
        "transcode_hls",
        "package",
    ]
    assert run["operation_type"] == "MEDIA_PUBLISH"
    assert run["labels"] == {"category": "media"}
    assert run["vars"] == {"media_id": MEDIA_ID}
    package_id = "pkg-d998390c82cb"  # derived from the media id and the files: stable
    assert re.fullmatch(r"pkg-[0-9a-f]{12}", run["outputs"]["package_id"])
    assert run["outputs"] == {
        "media_id": MEDIA_ID,
        "files": [MEDIA_FILES["mp4"], MEDIA_FILES["webm"], MEDIA_FILES["hls"]],
        "package_id": package_id,
        "package_post_url": POST_URL + package_id,
    }
    steps = steps_by_key(run)
    fetch = steps["fetch"]
    assert fetch["outputs"] == {"path": SOURCE_PATH, "size_bytes": 49_229_338}
    assert (fetch["attempt"], fetch["max_attempts"], fetch["progress"]) == (1, 3, 1.0)
    for fmt, file in MEDIA_FILES.items():
        transcode = steps[f"transcode_{fmt}"]
        assert transcode["type"] == "Transcode"
        assert transcode["needs"] == ["fetch"]
        assert transcode["outputs"]["file"] == file
        assert transcode["outputs"]["format"] == fmt
    # the three transcodes ran side by side
    starts = sorted(steps[f"transcode_{f}"]["started_at"] for f in MEDIA_FILES)
    ends = sorted(steps[f"transcode_{f}"]["finished_at"] for f in MEDIA_FILES)
    assert starts[-1] < ends[0]

    package = steps["package"]
    assert (package["name"], package["type"], package["kind"]) == (
        "Create faspex package",
        "FaspexDelivery",
        "workflow",
    )
    assert package["outputs"]["package_id"] == package_id
    p = await admin(engine)
    child = await engine.runs.get(p, package["child_run_id"])
    _all_succeeded(child)
    assert (child["workflow"], child["parent_run_id"], child["parent_step_id"]) == (
        "faspex-delivery",
        run["id"],
        package["id"],
    )
    assert child["inputs"] == {
        "media_id": MEDIA_ID,
        "files": list(MEDIA_FILES.values()),
        "recipients": ["delivery@media.example"],
    }
    assert child["outputs"] == package["outputs"]
    assert [s["key"] for s in child["steps"]] == ["create_package", "upload", "send"]

    assert await _resources(engine, run["id"]) == sorted(
        [("file", SOURCE_PATH, "CREATED")] + [("file", f, "CREATED") for f in MEDIA_FILES.values()]
    )
    assert await _resources(engine, child["id"]) == [("faspex_package", package_id, "CREATED")]


async def test_media_pipeline_with_fewer_formats(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(engine, "media-pipeline", formats=["mp4", "webm"])
    _all_succeeded(run)
    files = [MEDIA_FILES["mp4"], MEDIA_FILES["webm"]]
    assert run["outputs"] == {
        "media_id": MEDIA_ID,
        "files": files,
        "package_id": "pkg-0fae6343a468",
        "package_post_url": POST_URL + "pkg-0fae6343a468",
    }
    hls = steps_by_key(run)["transcode_hls"]
    assert hls["outputs"] == {"format": "hls", "file": None, "mime_type": None}
    assert await _resources(engine, run["id"]) == sorted(
        [("file", SOURCE_PATH, "CREATED")] + [("file", f, "CREATED") for f in files]
    )


async def test_media_pipeline_rejects_an_unknown_format(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(engine, "media-pipeline", formats=["mp4", "avi"])
    assert run["status"] == "FAILED"
    steps = steps_by_key(run)
    assert [steps[f"transcode_{f}"]["error"] for f in MEDIA_FILES] == [
        {
            "code": "exception",
            "message": "ValueError: unknown format(s) avi; known: hls, mp4, webm",
        }
    ] * 3
    assert steps["package"]["status"] == "SKIPPED"


async def test_media_pipeline_fails_at_once_on_a_bad_source(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(engine, "media-pipeline", source="ftp://media.example/a.mov")
    assert run["status"] == "FAILED"
    assert run["error"] == {
        "code": "invalid_source",
        "step": "fetch",
        "message": "source must be an http(s) URL, got 'ftp://media.example/a.mov'",
    }
    assert steps_by_key(run)["fetch"]["attempt"] == 1  # not retried


async def test_ops_change(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(engine, "ops-change")
    _all_succeeded(run)
    assert [s["key"] for s in run["steps"]] == ["submit", "execute", "close"]
    assert run["operation_type"] == "CONFIG_CHANGE"
    assert run["labels"] == {"category": "operations"}
    assert run["vars"] == {"change_id": "CHG-1042"}
    hosts = ["web-1", "web-2", "web-3"]
    assert run["outputs"] == {
        "change_id": "CHG-1042",
        "state": "CLOSED_SUCCESSFUL",
        "hosts_changed": hosts,
    }
    steps = steps_by_key(run)
    assert steps["submit"]["outputs"] == {"change_id": "CHG-1042", "risk": "low", "host_count": 3}
    assert steps["close"]["outputs"] == {
        "state": "CLOSED_SUCCESSFUL",
        "summary": "CHG-1042: changed 3 host(s)",
    }

    execute = steps["execute"]
    assert (execute["kind"], execute["type"]) == ("workflow", "ChangeExecution")
    p = await admin(engine)
    child = await engine.runs.get(p, execute["child_run_id"])
    _all_succeeded(child)
    assert (child["workflow"], child["parent_run_id"], child["parent_step_id"]) == (
        "ops-change-execution",
        run["id"],
        execute["id"],
    )
    assert child["operation_type"] == "CONFIG_CHANGE"
    assert [s["key"] for s in child["steps"]] == ["precheck", "apply", "verify"]
    assert child["outputs"]["verified"] == hosts
    assert set(child["outputs"]["baseline"]) == set(hosts)

    apply_step = steps_by_key(child)["apply"]
    assert apply_step["type"] == "HostChange"
    items = await engine.runs.steps(p, child["id"], parent=apply_step["id"])
    assert [i["key"] for i in items] == ["apply[0]", "apply[1]", "apply[2]"]
    assert [i["name"] for i in items] == [f"Apply change [{n}]" for n in range(3)]
    assert all(i["status"] == "SUCCEEDED" for i in items)
    assert all(i["parent_step_id"] == apply_step["id"] for i in items)
    assert [i["outputs"]["host"] for i in items] == hosts
    assert all(i["outputs"]["value"] == 4096 for i in items)
    # max_parallel 2: the third host starts only after one of the first two has finished
    assert items[2]["started_at"] >= min(items[0]["finished_at"], items[1]["finished_at"])
    assert apply_step["outputs"] == {"items": [i["outputs"] for i in items]}

    assert await _resources(engine, run["id"]) == [
        ("change_request", "CHG-1042", "UPDATED"),
        ("change_request", "CHG-1042", "UPDATED"),
    ]
    assert await _resources(engine, child["id"]) == [("host", h, "UPDATED") for h in hosts]


async def test_ops_change_rejects_a_bad_ticket(engine: Legato) -> None:
    await _apply_examples(engine)
    run = await _run(
        engine, "ops-change", ticket={"id": "42", "summary": "", "requested_by": "ops@example.com"}
    )
    assert run["status"] == "FAILED"
    assert run["error"] == {
        "code": "exception",
        "step": "submit",
        "message": "ValueError: ticket id '42' must look like CHG-1234; the ticket needs a summary",
    }
    steps = steps_by_key(run)
    assert [steps[k]["status"] for k in ("submit", "execute", "close")] == [
        "FAILED",
        "SKIPPED",
        "SKIPPED",
    ]
