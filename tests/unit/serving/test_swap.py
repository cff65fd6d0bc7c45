"""Swapping with what the worker uses (ModelSlot, CatalogueOverlay): a bad artifact never
replaces a good one, a swap under load never mixes versions within a batch, and a new runner
takes over the catalogue updates seen before it."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest
from support.export_artifacts import MeanTower, build, item_ids

from streamrec.contracts.items import ItemUpdate
from streamrec.serving.artifact import ArtifactError
from streamrec.serving.runner import Runner
from streamrec.streams.catalogue import CatalogueOverlay
from streamrec.streams.model_slot import ModelSlot


def test_corrupt_or_truncated_artifact_is_refused_and_previous_keeps_serving(artifact, tmp_path: Path) -> None:
    registry, result = artifact
    slot = ModelSlot()
    slot.swap(Runner.load(registry.fetch(result.ref.version), "cpu"))
    bad = tmp_path / "bad"
    shutil.copytree(registry.fetch(result.ref.version), bad)
    onnx = bad / "session.onnx"
    onnx.write_bytes(onnx.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match=r"session\.onnx is corrupt or truncated"):
        slot.swap(Runner.load(bad, "cpu"))
    runner = slot.current
    assert runner is not None and runner.version == result.ref.version
    [(ids, _)] = runner.recommend([["item-1"]], [["click"]], 10, True)
    assert len(ids) == 10


def test_swap_under_concurrent_calls_never_mixes_versions(registry) -> None:
    # Two versions that rank in opposite directions: every result says which one made it.
    runners = {}
    for sign in (1.0, -1.0):
        ref = build(registry, MeanTower(sign=sign)).ref
        runners[ref.version] = Runner.load(registry.fetch(ref.version), "cpu")
    sessions = [[item_ids()[i], item_ids()[i + 1]] for i in range(0, 60, 2)]
    types = [["click", "view"]] * len(sessions)
    expected = {v: r.recommend(sessions, types) for v, r in runners.items()}
    assert len({str(e) for e in expected.values()}) == 2
    for r in runners.values():
        r.max_batch = 4  # one call = 8 onnxruntime runs, so a swap lands inside calls
    slot = ModelSlot()
    slot.swap(next(iter(runners.values())))
    stop = threading.Event()
    errors: list[str] = []
    seen_versions: set[str] = set()

    def serve() -> None:
        while not stop.is_set():
            runner = slot.current  # read once per batch, as the pipeline does
            assert runner is not None
            version, recs = runner.version, runner.recommend(sessions, types)
            seen_versions.add(version)
            if recs != expected[version]:
                errors.append(version)

    def swap() -> None:
        deadline = time.monotonic() + 10
        swaps = 0
        while (len(seen_versions) < 2 or swaps < 200) and time.monotonic() < deadline:
            for r in runners.values():
                slot.swap(r)
                swaps += 1
                time.sleep(0.0005)

    threads = [threading.Thread(target=serve) for _ in range(2)]
    for t in threads:
        t.start()
    swap()
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert seen_versions == set(runners)


def test_swap_carries_unavailable_and_cold_items(artifact, registry) -> None:
    reg, result = artifact
    old = Runner.load(reg.fetch(result.ref.version), "cpu")
    overlay, slot = CatalogueOverlay(), ModelSlot()
    updates = [
        ItemUpdate("item-3", available=False),
        ItemUpdate("cold", available=True, vector=old.item_vectors(["item-5"])[0].tolist()),
    ]
    overlay.record(updates, {}, None)
    overlay.apply(old, updates)
    slot.swap(old)
    new = Runner.load(registry.fetch(build(registry).ref.version), "cpu")
    overlay.replay_onto(new)  # what the worker does before the swap (WorkerRuntime._install_model)
    slot.swap(new)
    assert "item-3" in new.unavailable and "cold" in new.item_ids
