"""The Celery app of the peer benchmark: one no-op task, Redis as broker and result backend.

Imported by the client (``celery_peer``) and by the worker subprocess it starts
(``celery -A bench.peers.celery_app worker``); both read the same environment.
"""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("LEGATO_BENCH_REDIS", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("LEGATO_BENCH_QUEUE", "legato-bench")

app = Celery("legato_bench_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")  # type: ignore[untyped-decorator]
def noop() -> None:
    """Does nothing, like :func:`bench.steps.noop`."""
    return None
