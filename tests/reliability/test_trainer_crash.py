"""Issue #9, item 7 (docs/architecture.md, invariant 3: artifacts built in a staging
directory and published by one rename): the online trainer SIGKILLed at an exact point of its
export/publish step leaves no half artifact visible in the registry and nothing half
announced; restarted, it resumes from the last promoted version it keeps state for and
promotes again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.tiny_model import chain_examples
from support.trainer_harness import initial_model, trainer_env

from streamrec.config import Settings
from streamrec.contracts.training_batch import encode_batch
from streamrec.kafka import make_producer, read_topic
from streamrec.local.services import EmbeddedServices
from streamrec.serving.registry import open_registry
from streamrec.trainer.process import TrainerProcess

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
TESTS_DIR = Path(__file__).resolve().parents[1]


def _visible_versions(registry_root: Path) -> list[str]:
    """What any reader of the registry directory can see (dot-names are staging/trash)."""
    return sorted(p.name for p in registry_root.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("point", ["parity", "sealed", "published", "announce"])
def test_trainer_killed_during_export_leaves_no_half_artifact_and_resumes(
    point: str, services: EmbeddedServices, unique_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pass: a real trainer process SIGKILLs itself at ``point`` of its first promotion; then
    (a) every version the registry lists (and every visible directory in it) verifies
    completely; before the publish rename nothing new is visible, after it the new version is
    whole; (b) nothing was announced; (c) a restarted trainer (no --init-model) resumes from the
    newest version it has state for (the crashed candidate only if its lineage rename happened),
    promotes again, and announces a complete version whose parent is that version."""
    env = trainer_env(services, unique_prefix, tmp_path / "data")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    init, first = initial_model(settings, tmp_path)
    registry = open_registry("", settings.data_dir)
    producer = make_producer(settings.broker)
    for b in range(10):
        producer.send(settings.topics.training, value=encode_batch(first, chain_examples(100, seed=b)))
    producer.flush()
    producer.close()

    log_path = tmp_path / "trainer.log"
    with log_path.open("wb") as log:
        child = subprocess.run(
            [sys.executable, "-m", "support.reliability_trainer_child", str(init), point],
            env={**os.environ, **env, "PYTHONPATH": str(TESTS_DIR)},
            cwd=TESTS_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=180,
        )
    out = log_path.read_text(errors="replace")
    assert child.returncode == -signal.SIGKILL and f"CRASH-POINT {point}" in out, out[-3000:]

    listed = [r.version for r in registry.list()]
    assert _visible_versions(registry.root) == sorted(listed)  # nothing visible that is not listed
    for version in listed:
        registry.fetch(version)  # verifies every file: raises on a half artifact
    if point in ("parity", "sealed"):
        assert listed == [first]
    else:
        assert len(listed) == 2 and listed[0] == first
    assert read_topic(settings.broker, settings.topics.models, timeout_s=3) == []

    restarted = TrainerProcess(Settings(), None, threading.Event())
    resumed = listed[-1] if point == "announce" else first
    assert restarted.served.version == resumed
    thread = threading.Thread(target=restarted.run)
    thread.start()
    deadline = time.monotonic() + 90
    while restarted.metrics.promotions._value.get() < 1 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    restarted.stop.set()
    thread.join(30)
    assert restarted.metrics.promotions._value.get() >= 1, "the restarted trainer did not promote"
    announced = [json.loads(r.value) for r in read_topic(settings.broker, settings.topics.models, min_count=1)]
    assert announced[-1]["version"] == restarted.served.version and announced[-1]["parent"] == resumed
    registry.fetch(announced[-1]["version"], announced[-1]["sha256"])
    assert _visible_versions(registry.root) == sorted(r.version for r in registry.list())
