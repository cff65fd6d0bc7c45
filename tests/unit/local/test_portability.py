"""Off Linux (macOS: no PR_SET_PDEATHSIG) starting a child still works, and the parent's exit
hook stops the children it started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamrec.local import services


def test_die_with_parent_is_a_no_op_without_pdeathsig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "PDEATHSIG", False)

    def no_libc(*_a: object, **_k: object) -> None:
        raise AssertionError("no libc call off Linux")

    monkeypatch.setattr(services.ctypes, "CDLL", no_libc)
    services.die_with_parent()
    proc = subprocess.Popen(
        [sys.executable, "-c", "print('ok')"], stdout=subprocess.PIPE, preexec_fn=services.die_with_parent
    )
    assert proc.communicate(timeout=30)[0].strip() == b"ok"


def test_the_exit_hook_stops_tracked_children() -> None:
    proc = services.track(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    done = services.track(subprocess.Popen([sys.executable, "-c", "pass"]))
    done.wait(30)
    services.stop_tracked(grace_s=5.0)
    assert proc.poll() is not None and done.returncode == 0
