"""``uses: http`` — one HTTP request; a 4xx/5xx answer fails the step. The destination, and
every redirect's, must be an address the installation allows (``legato.engine.outbound``)."""

from __future__ import annotations

from typing import Any

import httpx

from legato.engine.context import StepContext
from legato.engine.kinds.errors import StepFailure
from legato.engine.outbound import OutboundRefused
from legato.model.durations import parse_duration

__all__ = ["run_http"]


async def run_http(ctx: StepContext, args: dict[str, Any]) -> dict[str, Any]:
    method = str(args.get("method", "GET")).upper()
    url = str(args["url"])
    ctx.log.info("%s %s", method, url)
    try:
        async with httpx.AsyncClient(
            timeout=parse_duration(args.get("timeout", 30.0)),
            transport=ctx.outbound.transport(),
            trust_env=False,  # no proxy from the environment: it would connect unchecked
            follow_redirects=bool(args.get("follow_redirects", False)),
        ) as client:
            response = await client.request(
                method,
                url,
                headers=args.get("headers"),
                json=args.get("json"),
                content=args.get("body"),
            )
    except OutboundRefused as exc:
        raise StepFailure(exc.code, f"{method} {url}: {exc.message}", retryable=False) from exc
    except httpx.HTTPError as exc:
        raise StepFailure("http_error", f"{method} {url}: {exc}") from exc
    ctx.log.info("%s %s -> %d", method, url, response.status_code)
    outputs: dict[str, Any] = {"status": response.status_code, "headers": dict(response.headers)}
    try:
        outputs["json"] = response.json()
    except ValueError:
        outputs["text"] = response.text
    if response.status_code >= 400:
        raise StepFailure(
            "http_status",
            f"{method} {url} answered {response.status_code}",
            retryable=response.status_code >= 500 or response.status_code == 429,
        )
    return outputs
