"""``streamrec bench --only api``: the latency of ``GET /v1/feeds/{user}`` through a real
``streamrec api`` process at a fixed offered rate, and of a direct redis-py ``HGET`` of the
same feeds at the same rate in the same run (what an app reading Redis itself pays).

Open loop: request i is due at ``start + i / rate`` whatever happened to the ones before, and
its latency runs from that due time, so a stall shows up as the queue it causes instead of
slowing the offered load (no coordinated omission). The client is asyncio over raw HTTP/1.1
keep-alive connections (a pool), light enough to offer 1,000 requests/s from the same 2 cores.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from streamrec.bench.e2e_bench import cpu_seconds
from streamrec.config import Settings
from streamrec.contracts.feed import Feed, feed_key
from streamrec.feed_store import FEED_FIELD, redis_client, write_feeds
from streamrec.local.stack import local_services
from streamrec.local.supervisor import spawn, wait_ready
from streamrec.net import free_port
from streamrec.settings.cli import settings_env

TOKEN = "bench-token"
TARGET_P99_MS = 5.0


@dataclass(frozen=True)
class ApiBenchConfig:
    rate: int = 1000
    seconds: float = 30.0
    warm_s: float = 3.0
    users: int = 10_000
    connections: int = 32
    seed: int = 0

    @classmethod
    def quick(cls) -> ApiBenchConfig:
        return cls(rate=200, seconds=3.0, warm_s=1.0, users=500, connections=8)


def seed_feeds(url: str, prefix: str, users: int, k: int) -> list[str]:
    """One feed of ``k`` items per user, written with the worker's own write path."""
    client = redis_client(url)
    ids = [f"user-{i}" for i in range(users)]
    now = time.time()
    for start in range(0, users, 1000):
        feeds = [
            Feed(
                u,
                [f"item-{(j * 7 + n) % 50_000}" for n in range(k)],
                [1.0 - n / k for n in range(k)],
                "v1",
                now,
                "e",
                0,
                j,
            )
            for j, u in enumerate(ids[start : start + 1000], start)
        ]
        write_feeds(client, prefix, feeds, 3600)
    client.close()
    return ids


async def open_loop(call: Callable[[str], Awaitable[None]], users: list[str], cfg: ApiBenchConfig) -> dict[str, Any]:
    """Offer ``cfg.rate`` calls/s for warm-up + window; latency (ms) of those due in the window."""
    rng = random.Random(cfg.seed)
    total = int(cfg.rate * (cfg.warm_s + cfg.seconds))
    warm = int(cfg.rate * cfg.warm_s)
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(i: int, due: float) -> None:
        nonlocal errors
        try:
            await call(rng.choice(users))
        except Exception:  # counted: a failed read is part of the result, not a crash of the bench
            errors += 1
            return
        if i >= warm:
            latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    for i in range(total):
        due = start + i / cfg.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return summary(latencies, errors, total / elapsed)


def summary(latencies: list[float], errors: int, achieved: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3) if ordered else float("nan")

    mean = round(statistics.fmean(ordered), 3) if ordered else float("nan")
    return {"requests": len(ordered), "errors": errors, "offered_per_s_achieved": round(achieved, 1)} | {
        "latency_ms": {"p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "p999": q(0.999), "max": q(1.0), "mean": mean}
    }


class HttpPool:
    """Keep-alive HTTP/1.1 connections to the API; a request takes a free one."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def open(self) -> None:
        for _ in range(self.size):
            self.free.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))

    async def get_feed(self, user: str) -> None:
        reader, writer = await self.free.get()
        try:
            head = f"GET /v1/feeds/{quote(user, safe='')} HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            writer.write(head.encode())
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(status.decode().strip())
        finally:
            self.free.put_nowait((reader, writer))

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait()[1].close()


async def _direct(url: str, prefix: str, users: list[str], cfg: ApiBenchConfig) -> dict[str, Any]:
    import redis.asyncio as aioredis

    # blocking pool: a burst waits for a connection instead of failing with "too many connections"
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=cfg.connections, timeout=None)
    client = aioredis.Redis(connection_pool=pool)
    try:

        async def hget(user: str) -> None:
            if await client.hget(feed_key(prefix, user), FEED_FIELD) is None:
                raise RuntimeError("no feed")

        return await open_loop(hget, users, cfg)
    finally:
        await client.aclose()


async def _through_api(port: int, users: list[str], cfg: ApiBenchConfig) -> dict[str, Any]:
    pool = HttpPool(port, cfg.connections)
    await pool.open()
    try:
        return await open_loop(pool.get_feed, users, cfg)
    finally:
        pool.close()


def _with_cpu(window: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A window's result plus the CPU each process spent on it, per request (ms): what the
    API costs whatever the machine's load (the latencies depend on it)."""
    before = cpu_seconds()
    result = window()
    after = cpu_seconds()
    n = max(result["requests"] + result["errors"], 1)
    roles = {"worker": "api", "producer (bench)": "load generator (bench)", "redis": "redis", "broker": "broker"}
    result["cpu_ms_per_request"] = {
        roles.get(k, k): round((after[k] - before.get(k, 0.0)) * 1000 / n, 4) for k in after if k in roles
    }
    return result


def run_api_bench(settings: Settings, cfg: ApiBenchConfig) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="streamrec-bench-api-") as tmp:
        run_dir = Path(tmp)
        with local_services(settings.model_copy(update={"data_dir": run_dir / "data"}), run_dir) as s:
            users = seed_feeds(s.redis, s.feed_prefix, cfg.users, s.k)
            port = free_port()  # not the configured one: another stack on this machine may hold it
            env = settings_env(s) | {
                "STREAMREC_API__TOKENS": TOKEN,
                "STREAMREC_API__PORT": str(port),
                "STREAMREC_API__HOST": "127.0.0.1",
                "STREAMREC_LOG_LEVEL": "WARNING",
            }
            child = spawn("api", ["api"], env, run_dir / "logs")
            try:
                wait_ready(child, f"http://127.0.0.1:{port}/readyz", timeout_s=60)
                print(f"── api: {cfg.rate:,} GET /v1/feeds/{{user}} per s for {cfg.seconds:.0f} s", flush=True)
                api = _with_cpu(lambda: asyncio.run(_through_api(port, users, cfg)))
                print(f"── api: {cfg.rate:,} direct redis-py HGET per s for {cfg.seconds:.0f} s", flush=True)
                direct = _with_cpu(lambda: asyncio.run(_direct(s.redis, s.feed_prefix, users, cfg)))
            finally:
                child.stop()
    p99, base = api["latency_ms"]["p99"], direct["latency_ms"]["p99"]
    return {
        "config": asdict(cfg),
        "api": api,
        "direct_redis": direct,
        "p99_ratio_api_over_direct": round(p99 / base, 2) if base else None,
        "target": {"p99_ms": TARGET_P99_MS, "measured": p99, "met": p99 <= TARGET_P99_MS},
        "loadavg_end": os.getloadavg(),
    }
