"""The embedded-services launcher leaves no process behind: on a clean stop (SIGTERM), and
when its own process is killed with SIGKILL (children die with their parent)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamrec.local.services import ServiceError, embedded_services, pid_alive

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _start_up(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamrec.cli", "up", "--services-only", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if line.startswith("Ctrl-C to stop") or time.monotonic() > deadline:
            break
    kids = _children(proc.pid)
    assert len(kids) == 2, f"expected broker + redis, got {kids}"
    return proc, kids


def _gone(pids: list[int], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(pid_alive(p) and _not_zombie(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_sigterm_stops_everything_it_started(tmp_path: Path) -> None:
    proc, kids = _start_up(tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert _gone(kids)


def test_sigkill_of_the_launcher_leaves_no_orphan(tmp_path: Path) -> None:
    proc, kids = _start_up(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _gone(kids), "broker or redis outlived a SIGKILLed parent"


def test_given_addresses_start_nothing() -> None:
    with embedded_services(broker="127.0.0.1:9", redis="redis://127.0.0.1:9/0") as svc:
        assert svc.started == [] and svc.broker == "127.0.0.1:9"


def test_missing_binary_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServiceError, match="apt-get install -y redis-server"), embedded_services(broker="x:1"):
        pass
