"""Child ``streamrec`` processes (worker, trainer) for ``demo`` and ``up``.

Children inherit settings through ``STREAMREC_*`` variables (the same path an operator uses),
log to files, die with their parent (PR_SET_PDEATHSIG on Linux, the exit hook elsewhere), and
are stopped with SIGTERM first so they commit what they processed, SIGKILL only after a grace
period.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from streamrec.local.services import ServiceError, die_with_parent, stop_process, track


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, grace_s: float = 15.0) -> int:
        return stop_process(self.proc, grace_s)


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Child:
    """Start ``streamrec <args>`` with extra environment ``env``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamrec.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            preexec_fn=die_with_parent,
        )
    return Child(name, track(proc), log_path)


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, str]:
    """(status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except OSError:
        return 0, ""


def wait_ready(child: Child, url: str, timeout_s: float) -> None:
    """Wait for ``url`` to answer 200; fail fast (with the log) if the child dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise ServiceError(f"{child.name} exited with code {child.proc.returncode}: {child.log_tail(600).strip()}")
        if http_get(url)[0] == 200:
            return
        time.sleep(0.3)
    raise ServiceError(f"{child.name} not ready at {url} after {timeout_s:.0f}s; log: {child.log_path}")
