"""The running system on one machine, shared by ``streamrec demo`` and ``streamrec up``:
embedded services (or the configured ones), topics, an initial model when the registry has
none, and the worker and trainer as supervised child processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.errors import UserError
from streamrec.kafka import ensure_topics, make_producer, topic_plan
from streamrec.local.services import EmbeddedServices, embedded_services
from streamrec.local.supervisor import Child, http_get, spawn, wait_ready
from streamrec.net import free_port
from streamrec.prom import Scrape, parse
from streamrec.settings.cli import settings_env


@contextlib.contextmanager
def local_services(settings: Settings, run_dir: Path, durable: bool = False) -> Iterator[Settings]:
    """Start what is not configured (broker, Redis; ``durable``: the broker on a local S3 server)
    and yield settings pointing at them. The
    worker's and trainer's HTTP endpoints get fresh ephemeral ports: a fixed port (6066) can be
    taken between a check and the child's bind by another stack on the same machine, and the
    demo would then read someone else's metrics."""
    with embedded_services(settings.broker, settings.redis, run_dir / "services", durable) as svc:
        yield pointed_at(settings, svc)


def pointed_at(settings: Settings, svc: EmbeddedServices) -> Settings:
    """``settings`` with the services' addresses and fresh ports for the children's endpoints."""
    return settings.model_copy(
        update={
            "broker": svc.broker,
            "redis": svc.redis,
            "data_dir": settings.data_dir.resolve(),
            "worker": settings.worker.model_copy(update={"web_port": free_port()}),
            "trainer": settings.trainer.model_copy(update={"web_port": free_port()}),
            "api": settings.api.model_copy(update={"port": free_port()}),
        }
    )


def run_step(title: str, argv: list[str], env: dict[str, str]) -> None:
    """A ``streamrec`` subcommand in the foreground, its progress shown as it goes."""
    print(f"── {title}", flush=True)
    proc = subprocess.run([sys.executable, "-m", "streamrec.cli", *argv], env={**os.environ, **env}, check=False)
    if proc.returncode != 0:
        raise UserError(f"{title} failed (exit {proc.returncode}); see the output above")


class Stack:
    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.children: dict[str, Child] = {}
        self.model_dir = run_dir / "initial-model"

    # ----------------------------------------------------------------- set-up
    def child_env(self) -> dict[str, str]:
        return settings_env(self.settings)

    def prepare_topics(self) -> None:
        s = self.settings
        ensure_topics(s.broker, topic_plan(s), s.replication, s.kafka_security)

    def registry(self) -> Any:
        from streamrec.serving.registry import open_registry

        return open_registry(self.settings.registry.url, self.settings.data_dir)

    def served_version(self) -> str | None:
        refs = self.registry().list()
        return refs[-1].version if refs else None

    def ensure_model(self, train_events: Path, items: Path | None, epochs: int | None, what: str) -> None:
        """Train and export an initial model unless the registry already has a version, then
        announce the newest version so a starting worker finds what to serve. ``epochs`` None
        trains the way ``streamrec train`` does by default (early stopping, the training budget)."""
        if self.served_version() is None:
            env = self.child_env()
            item_args = ["--items", str(items)] if items else []
            run_step(
                f"training an initial model on {what}",
                [
                    "train",
                    "--events",
                    str(train_events),
                    *item_args,
                    "--out",
                    str(self.model_dir),
                    *(["--encoder-epochs", str(epochs)] if epochs is not None else []),
                ],
                env,
            )
            run_step("exporting it to the registry", ["export", "--model", str(self.model_dir)], env)
        self.announce_latest()

    def announce_latest(self) -> None:
        """Put the newest registry version on the models topic so a starting worker finds what
        to serve (harmless if it is already the announced one)."""
        from streamrec.contracts.announcement import send_announcement

        refs = self.registry().list()
        if not refs:
            raise UserError("the registry is empty after export")
        with contextlib.closing(make_producer(self.settings.broker, self.settings.kafka_security)) as producer:
            send_announcement(producer, self.settings.topics.models, refs[-1].announcement())

    def start_worker(self, log_name: str = "worker") -> None:
        child = spawn(log_name, ["worker"], self.child_env(), self.run_dir / "logs")
        self.children["worker"] = child
        print(f"── starting the stream worker (log {child.log_path})", flush=True)
        wait_ready(child, f"http://127.0.0.1:{self.settings.worker.web_port}/readyz", timeout_s=120)

    def start_trainer(self) -> None:
        init = self.model_dir
        args = ["trainer", "--init-model", str(init)] if init.is_dir() else ["trainer"]
        child = spawn("trainer", args, self.child_env(), self.run_dir / "logs")
        self.children["trainer"] = child
        print(f"── starting the online trainer (log {child.log_path})", flush=True)
        wait_ready(child, f"http://127.0.0.1:{self.settings.trainer.web_port}/healthz", timeout_s=120)

    def start_api(self) -> str | None:
        """``streamrec api`` on loopback. Returns the token to call it with when it made one
        (no ``api.tokens`` configured: a fresh random one), None when the configured ones apply."""
        configured = self.settings.api.tokens.get_secret_value().strip()
        token = None if configured else secrets.token_urlsafe(16)
        env = self.child_env() | {"STREAMREC_API__TOKENS": configured or str(token), "STREAMREC_API__HOST": "127.0.0.1"}
        child = spawn("api", ["api"], env, self.run_dir / "logs")
        self.children["api"] = child
        print(f"── starting the HTTP API (log {child.log_path})", flush=True)
        wait_ready(child, f"http://127.0.0.1:{self.settings.api.port}/readyz", timeout_s=60)
        return token

    def stop_children(self) -> dict[str, int]:
        return {name: child.stop() for name, child in reversed(list(self.children.items()))}

    # ---------------------------------------------------------------- metrics
    def scrape(self, which: str) -> Scrape:
        port = self.settings.worker.web_port if which == "worker" else self.settings.trainer.web_port
        status, body = http_get(f"http://127.0.0.1:{port}/metrics", timeout_s=1.0)
        return parse(body) if status == 200 else Scrape()

    def worker_version(self, s: Scrape) -> str:
        labelled = s.labelled.get("streamrec_model_version_info", [])
        return next((labels["version"] for labels, v in labelled if v == 1), "-")
