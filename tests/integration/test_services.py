"""The embedded-services launcher leaves no process behind: on a clean stop (SIGTERM), and
when its own process is killed with SIGKILL (children die with their parent)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from support.worker_harness import produce

from streamrec.kafka import ensure_topics, read_topic
from streamrec.local.services import ServiceError, embedded_services, pid_alive

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _start_up(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], list[int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamrec.cli", "up", "--services-only", *flags, "--data-dir", str(tmp_path)],
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
    want = 3 if "--durable" in flags else 2
    assert len(kids) == want, f"expected broker + redis (+ the S3 server with --durable), got {kids}"
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


@pytest.mark.parametrize("flags", [(), ("--durable",)], ids=["memory", "durable"])
def test_sigterm_stops_everything_it_started(tmp_path: Path, flags: tuple[str, ...]) -> None:
    proc, kids = _start_up(tmp_path, *flags)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert _gone(kids)


@pytest.mark.parametrize("flags", [(), ("--durable",)], ids=["memory", "durable"])
def test_sigkill_of_the_launcher_leaves_no_orphan(tmp_path: Path, flags: tuple[str, ...]) -> None:
    proc, kids = _start_up(tmp_path, *flags)
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


def test_the_durable_broker_keeps_topics_records_and_offsets_across_a_restart(tmp_path: Path) -> None:
    """``durable``: Tansu on the local S3 server; after a graceful restart on the same port the
    topic, its records and a group's committed offset are all still there (the memory broker
    comes back empty)."""
    with embedded_services(workdir=tmp_path, durable=True) as svc:
        broker = svc.service("broker")
        ensure_topics(svc.broker, {"kept": (1, False)})
        produce(svc.broker, "kept", [(f"u{i}", {"i": i}) for i in range(50)])
        tp = TopicPartition("kept", 0)
        consumer = KafkaConsumer(bootstrap_servers=svc.broker, group_id="g", enable_auto_commit=False)
        consumer.commit({tp: OffsetAndMetadata(30, "", -1)})
        consumer.close()
        broker.restart()
        assert [json.loads(r.value)["i"] for r in read_topic(svc.broker, "kept", min_count=50, timeout_s=20)] == list(
            range(50)
        )
        consumer = KafkaConsumer(bootstrap_servers=svc.broker, group_id="g", enable_auto_commit=False)
        try:
            assert consumer.committed(tp) == 30
        finally:
            consumer.close()
