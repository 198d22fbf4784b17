"""Steps of the ``faspex-delivery`` example: bundle files into a package and send it.

A stand-in for a file delivery service: nothing leaves the machine, and the package id is
derived from what is delivered, so the same delivery always gets the same id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from legato_examples._work import digest, pause, simulate

if TYPE_CHECKING:
    from legato.engine.context import StepContext

__all__ = ["POST_URL", "create_package", "package_id_for", "post_package", "upload"]

#: Where a sent package can be seen; ``{package_id}`` is filled in.
POST_URL = "https://faspex.example/aspera/faspex/packages/{package_id}"


def package_id_for(media_id: str, files: list[str]) -> str:
    """The id of the package that delivers ``files`` of ``media_id``."""
    return f"pkg-{digest(media_id, *files, length=12)}"


def create_package(media_id: str, files: list[str], ctx: StepContext) -> dict[str, Any]:
    """Open a package for ``files``; answers its ``package_id``."""
    if not files:
        raise ValueError("there are no files to deliver")
    package_id = package_id_for(media_id, files)
    ctx.add_resource("faspex_package", package_id, "CREATED", {"media_id": media_id})
    ctx.log.info("Created package %s for %d file(s) of %s", package_id, len(files), media_id)
    return {"package_id": package_id, "file_count": len(files)}


def upload(package_id: str, files: list[str], ctx: StepContext) -> dict[str, Any]:
    """Upload every file into the package (simulated), reporting progress per file."""
    for index, name in enumerate(files, start=1):
        pause(ctx, 0.03, "uploading")
        ctx.progress(index / len(files), f"uploaded {index} of {len(files)}")
        ctx.log.info("Uploaded %s to %s", name, package_id)
    return {"uploaded": list(files)}


def post_package(package_id: str, recipients: list[str], ctx: StepContext) -> dict[str, str]:
    """Send the package to ``recipients``; answers the ``url`` where it can be seen."""
    simulate(ctx, 0.05, "sending", chunks=1)
    url = POST_URL.format(package_id=package_id)
    ctx.log.info("Sent %s to %s", package_id, ", ".join(recipients))
    return {"url": url}
