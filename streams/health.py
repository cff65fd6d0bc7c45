"""Liveness and readiness of the worker.

Live = the process and its event loop answer. Ready = it can do its job now: member of the
consumer group with partitions (or waiting for them), a model loaded, and both Kafka and Redis
reachable at the last probe. Readiness drops while Kafka or Redis is unreachable so Kubernetes
stops routing to (and alerts on) a worker that is only retrying.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field


@dataclass
class Health:
    kafka_ok: bool = False
    redis_ok: bool = False
    model_version: str | None = None
    started_at: float = field(default_factory=time.time)

    def reasons_not_ready(self) -> list[str]:
        out = []
        if not self.kafka_ok:
            out.append("kafka unreachable")
        if not self.redis_ok:
            out.append("redis unreachable")
        if self.model_version is None:
            out.append("no model loaded yet")
        return out

    @property
    def ready(self) -> bool:
        return not self.reasons_not_ready()


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    address = address.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    if not host:
        return address, default_port
    return host.strip("[]"), int(port)


async def tcp_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """True if any bootstrap server accepts a TCP connection within ``timeout_s``.

    A TCP connect is the cheapest signal that does not depend on client internals; a broker
    that accepts connections but fails requests shows up as consumer lag instead.
    """
    for address in bootstrap.split(","):
        host, port = _host_port(address.strip(), 9092)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
        except (TimeoutError, OSError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False
