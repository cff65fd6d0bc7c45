"""HTTP endpoints on faust's web server: ``/metrics`` (Prometheus text format), ``/healthz``
(live: the event loop answers) and ``/readyz`` (503 with the reasons while Kafka or Redis is
unreachable, no model is loaded, or the consumer is stalled: :mod:`streamrec.streams.health`)."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST

from streamrec import readiness
from streamrec.streams.health import Health
from streamrec.streams.metrics import WorkerMetrics


def register_pages(app: faust.App, metrics: WorkerMetrics, health: Health) -> None:
    @app.page("/metrics")
    async def prometheus(self: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type=, so the header is set directly.
        return self.bytes(metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        status, body = readiness.readyz(health.reasons_not_ready(), model_version=health.model_version)
        metrics.ready.set(1 if status == 200 else 0)
        return self.json(body, status=status)
