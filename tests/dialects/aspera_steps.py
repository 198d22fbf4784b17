"""Python steps of the Aspera Orchestrator dialect tests: they give the seed's values."""

from __future__ import annotations

from typing import Any

PACKAGE_ID = "5e0f9336-5e58-46a5-b944-a8253a956041"
POST_URL = (
    "fasp://faspex@testchris2.sl.dev.asperacloud.net:33001/Transcoded - "
    "5e0f9336-5e58-46a5-b944-a8253a956041.aspera-package/PKG - Transcoded?token="
    "ATM3_ACsvFz3yt1byrRDQ7cEtFKg0wxWS6ubjsWnkA8IAxSlbKoAAEWHQkLFXfeLjDz5Eq8uDH7_3MTA"
    "&cookie=aspera.faspex20:u:90ce20d7"
)
INDEXED_TABLE = {
    "Transcode server": {
        "node_id": "transcoder",
        "node": "Transcode server",
        "capacity_kb": "30000",
    },
    "Mac": {"node_id": "localhost", "node": "Mac", "capacity_kb": "20000"},
}


def create_package(ctx: Any) -> dict[str, str]:
    ctx.set_var("myfiles", "/root/chris/data_for_demos/shiporder.cmd")
    ctx.progress(1.0, "FASPEX Authorization received")
    return {"package_id": PACKAGE_ID, "package_post_url": POST_URL}


def index_nodes() -> dict[str, Any]:
    return {"IndexedTable": INDEXED_TABLE}
