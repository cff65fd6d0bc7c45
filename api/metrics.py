"""The API's Prometheus metrics (``/metrics``), recorded by a plain ASGI layer per route
template (``/v1/feeds/{user_id}``, not one series per user)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

# Feed reads take ~1 ms; publishes wait for the broker's acks (tens of ms).
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class ApiMetrics:
    """One registry per app, so that several apps (tests) never share a series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "streamrec_api_requests", "HTTP requests", ("route", "method", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "streamrec_api_request_seconds", "request latency", ("route",), buckets=BUCKETS, registry=self.registry
        )
        self.events = Counter("streamrec_api_events", "events posted, by outcome", ("outcome",), registry=self.registry)
        self.items = Counter("streamrec_api_items", "catalogue updates published", ("action",), registry=self.registry)


class MetricsLayer:
    """Counts each HTTP request and times it, labelled with the route it matched."""

    def __init__(self, app: Callable, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
