"""Liveness and readiness of the worker.

Live = the process and its event loop answer. Ready = it can do its job now: member of the
consumer group with partitions (or waiting for them), a model loaded, both Kafka and Redis
reachable at the last probe, and its consumer moving. Readiness drops while Kafka or Redis is
unreachable so Kubernetes stops routing to (and alerts on) a worker that is only retrying, and
when a partition with events waiting has made no progress for ``worker.stall_s``: a TCP check
cannot see a broker that accepts connections but answers nothing (a hung or SIGSTOPped process),
nor a consumer stuck inside the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ConsumerProgress:
    """Per assigned partition, since when it has had events waiting without moving, from the
    probe's lag and the last processed offsets (an offset is processed once its feed is written).
    A partition's clock restarts when it moves, when it had nothing waiting at the last probe,
    and when it is newly assigned."""

    stall_s: float
    clock: Callable[[], float] = time.monotonic
    _since: dict[int, float] = field(default_factory=dict)  # partition -> last move or empty
    _seen: dict[int, int] = field(default_factory=dict)  # partition -> last processed offset
    _lag: dict[int, int] = field(default_factory=dict)

    def observe(self, lag: dict[int, int], processed: dict[int, int]) -> None:
        now = self.clock()
        self._since = {  # partitions no longer assigned drop out
            p: self._since[p] if n and self._lag.get(p) and processed.get(p) == self._seen.get(p) else now
            for p, n in lag.items()
        }
        self._seen, self._lag = dict(processed), dict(lag)

    def stalled(self) -> str | None:
        """The reason, while some partition with events waiting has not moved for ``stall_s``."""
        now = self.clock()
        stuck = sorted(p for p, n in self._lag.items() if n > 0 and now - self._since[p] >= self.stall_s)
        if not stuck:
            return None
        idle = min(now - self._since[p] for p in stuck)
        waiting = sum(self._lag[p] for p in stuck)
        return f"consumer stalled: partitions {stuck} made no progress for {idle:.0f}s with {waiting} events waiting"


@dataclass
class Health:
    progress: ConsumerProgress
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
        stalled = self.progress.stalled()
        if stalled:
            out.append(stalled)
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
