"""Steps of the Encoding.com dialect tests: an encoder that reports where it saved each output."""

from __future__ import annotations

import time
from typing import Any


def download(ctx: Any, source: str) -> dict[str, str]:
    ctx.log.info("downloading %s", source)
    return {"duration": "00:01:30", "bitrate": "1000k", "video_codec": "h264"}


def encode(ctx: Any, format: dict[str, Any]) -> dict[str, str]:
    """Each ``destination`` of the format becomes a resource; one whose URL contains ``denied``
    failed to save; a format with ``fail`` fails. Without a destination the output stays on
    temporary S3/CDN links."""
    time.sleep(float(format.get("sleep", 0)))
    if format.get("fail"):
        raise RuntimeError(f"cannot encode to {format.get('output')}")
    destinations = format.get("destination") or []
    if isinstance(destinations, str):
        destinations = [destinations]
    ctx.log.info("encoding to %s", format.get("output"))
    for url in destinations:
        if "denied" in url:
            ctx.add_resource("destination", url, "Error (access denied)")
        else:
            ctx.add_resource("destination", url, "Saved")
    if not destinations:
        ctx.add_resource("s3_destination", "https://s3.example/tmp/out." + format["output"])
        ctx.add_resource("cf_destination", "https://cdn.example/tmp/out." + format["output"])
    return {"output": str(format.get("output"))}
