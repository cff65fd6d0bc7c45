"""Liveness and readiness of the worker.

Live = the process and its event loop answer. Ready = it can do its job now: member of the
consumer group with partitions (or waiting for them), a model loaded, Kafka answering and Redis
reachable at the last probe, and its consumer moving. Readiness drops while Kafka or Redis is
unreachable so Kubernetes stops routing to (and alerts on) a worker that is only retrying, and
when a partition with events waiting has made no progress for ``worker.stall_s`` (a consumer
stuck inside the worker, or a sink that takes no writes: neither probe sees those).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
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
            out.append("kafka not answering")
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


# ApiVersions v0 (api key 18), the request every Kafka client sends first: allowed before SASL
# authentication, and answered by the broker from memory.
PROBE_CORRELATION = 0x5EED
API_VERSIONS_V0 = struct.pack(">hhih", 18, 0, PROBE_CORRELATION, 15) + b"streamrec-probe"


async def kafka_answers(bootstrap: str, tls: ssl.SSLContext | None = None, timeout_s: float = 2.0) -> bool:
    """True if any bootstrap server answers an ApiVersions request within ``timeout_s``.

    A TCP connect is not enough: the kernel completes the handshake for a broker process that
    answers nothing (hung, or SIGSTOPped), and the worker's consumer then crawls on what it had
    fetched while a TCP check says "reachable". The request is a few bytes, so the probe still
    does not depend on client internals.
    """
    for address in bootstrap.split(","):
        host, port = _host_port(address.strip(), 9092)
        with contextlib.suppress(TimeoutError, OSError, asyncio.IncompleteReadError):
            if await asyncio.wait_for(_api_versions(host, port, tls), timeout_s):
                return True
    return False


async def _api_versions(host: str, port: int, tls: ssl.SSLContext | None) -> bool:
    reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None)
    try:
        writer.write(struct.pack(">i", len(API_VERSIONS_V0)) + API_VERSIONS_V0)
        await writer.drain()
        _size, correlation = struct.unpack(">ii", await reader.readexactly(8))
        return correlation == PROBE_CORRELATION
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
