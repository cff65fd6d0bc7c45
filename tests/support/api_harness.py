"""The HTTP API of one test, served by uvicorn in a thread on a loopback port, over the test's
own topics, Redis prefix and registry (tests/integration/conftest.py makes it a fixture)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

from streamrec.api.app import create_app
from streamrec.api.backend import Backend
from streamrec.config import Settings
from streamrec.net import free_port
from support.worker_harness import WorkerEnv

TOKEN = "s3cret-token"


@contextlib.contextmanager
def serve_api(wenv: WorkerEnv, data_dir: Path) -> Iterator[tuple[httpx.Client, Settings]]:
    """The API (tokens: an old one and TOKEN, as during a rotation) and a client for it."""
    settings = Settings(
        broker=wenv.broker,
        redis=wenv.redis,
        data_dir=data_dir,
        feed_prefix=wenv.feed_prefix,
        topics=wenv.topics,
        registry={"url": str(wenv.registry_dir)},
        worker={"app_id": wenv.prefix},
        api={"tokens": f"old-token,{TOKEN}", "port": free_port(), "host": "127.0.0.1"},
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(Backend(settings)), port=settings.api.port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=30) as client:
            yield client, settings
    finally:
        server.should_exit = True
        thread.join(20)
