"""Steps of the ``media-pipeline`` example: fetch a source, transcode it to several formats.

Nothing is downloaded or encoded; the steps take a moment, report progress and name the files
that real steps would have written.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from legato.engine.kinds import StepFailure
from legato_examples._work import digest, simulate

if TYPE_CHECKING:
    from legato.engine.context import StepContext

__all__ = ["FORMATS", "WORK_DIR", "fetch", "media_id_for", "transcode"]

#: Where the simulated files live.
WORK_DIR = PurePosixPath("/srv/media")


class Format(NamedTuple):
    """An output format: where its file goes (relative to the source) and how long it takes."""

    suffix: str
    mime_type: str
    seconds: float


FORMATS: dict[str, Format] = {
    "mp4": Format(".mp4", "video/mp4", 0.25),
    "webm": Format(".webm", "video/webm", 0.2),
    "hls": Format("/index.m3u8", "application/vnd.apple.mpegurl", 0.15),
}


def media_id_for(source: str) -> str:
    """The media id of a source URL: the same URL always gives the same id."""
    return f"media-{digest(source)}"


def fetch(source: str, ctx: StepContext) -> dict[str, Any]:
    """Download ``source`` (simulated) into the work directory.

    Carries ``media_id`` as a run value, records the downloaded file as a resource and answers
    its ``path`` and ``size_bytes``. Any other error would be retried (``retry`` in the
    workflow); a source that is no URL fails the step at once.
    """
    url = urlsplit(source)
    if url.scheme not in ("http", "https") or not url.netloc:
        # a bad input will not get better by trying again: fail at once, with our own code
        raise StepFailure(
            "invalid_source", f"source must be an http(s) URL, got {source!r}", retryable=False
        )
    media_id = media_id_for(source)
    name = PurePosixPath(url.path).name or "source"
    path = str(WORK_DIR / media_id / name)
    size_bytes = 40_000_000 + int(digest(source, "size"), 16) % 10_000_000
    ctx.log.info("Downloading %s (attempt %d)", source, ctx.attempt)
    ctx.set_var("media_id", media_id)
    simulate(ctx, 0.2, "downloading")
    ctx.add_resource("file", path, "CREATED", {"source": source, "size_bytes": size_bytes})
    ctx.log.info("Saved %d bytes to %s", size_bytes, path)
    return {"path": path, "size_bytes": size_bytes}


def transcode(
    path: str, format: str, ctx: StepContext, formats: list[str] | None = None
) -> dict[str, Any]:
    """Transcode the file at ``path`` to ``format`` (one of :data:`FORMATS`), simulated.

    When ``formats`` is given and lacks ``format``, there is nothing to do: the step succeeds
    with ``file`` null, so the steps after it still run.
    """
    unknown = sorted({format, *(formats or [])} - FORMATS.keys())
    if unknown:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; known: {known}")
    spec = FORMATS[format]
    if formats is not None and format not in formats:
        ctx.log.info("%s was not asked for (formats: %s); nothing to do", format, formats)
        ctx.progress(1.0, "not asked for")
        return {"format": format, "file": None, "mime_type": None}
    source = PurePosixPath(path)
    if spec.suffix.startswith("/"):  # a directory of segments with a playlist
        out = str(source.with_suffix("") / format / spec.suffix.lstrip("/"))
    else:
        out = str(source.with_suffix(spec.suffix))
    ctx.log.info("Transcoding %s to %s", path, format)
    simulate(ctx, spec.seconds, f"transcoding to {format}")
    ctx.add_resource("file", out, "CREATED", {"format": format, "mime_type": spec.mime_type})
    return {"format": format, "file": out, "mime_type": spec.mime_type}
