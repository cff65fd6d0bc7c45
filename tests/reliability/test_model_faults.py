"""Issue #9, item 6 (docs/architecture.md, invariant 3): a bad model announcement never replaces a good
model. A truncated artifact, a checksum mismatch (file changed, same size), an announced digest
that is not the artifact's, an artifact whose item matrix has the wrong shape for its graph
(correctly sealed, so only loading can tell) and a version that does not exist are each refused
while the worker keeps serving the previous version; a good version announced afterwards is
still swapped in."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from support.worker_harness import (
    WorkerEnv,
    announce,
    build_artifact,
    event,
    feeds,
    produce,
    running_worker,
    wait_until,
)

from streamrec.serving.artifact import META_JSON, ArtifactMeta, artifact_digest, seal
from streamrec.serving.registry import ArtifactRef

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def _copy(registry: Path, good: ArtifactRef, version: str) -> Path:
    out = registry / version
    shutil.copytree(registry / good.version, out)
    return out


def _truncated(registry: Path, good: ArtifactRef) -> ArtifactRef:
    d = _copy(registry, good, "v-truncated")
    onnx = d / "session.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])  # an interrupted copy
    return dataclasses.replace(good, version="v-truncated", uri=str(d))


def _checksum_mismatch(registry: Path, good: ArtifactRef) -> ArtifactRef:
    d = _copy(registry, good, "v-bitflip")
    with (d / "items.npy").open("r+b") as f:  # same size, one byte changed: only the hash can tell
        f.seek(-4, 2)
        b = f.read(1)
        f.seek(-4, 2)
        f.write(bytes([b[0] ^ 0x01]))
    return dataclasses.replace(good, version="v-bitflip", uri=str(d))


def _wrong_digest(registry: Path, good: ArtifactRef) -> ArtifactRef:
    d = _copy(registry, good, "v-wrong-digest")  # intact, but not what was announced
    return dataclasses.replace(good, version="v-wrong-digest", uri=str(d), sha256="0" * 64)


def _wrong_shape(registry: Path, good: ArtifactRef) -> ArtifactRef:
    d = _copy(registry, good, "v-wrong-shape")
    meta = ArtifactMeta.from_json((d / META_JSON).read_bytes())
    np.save(d / "items.npy", np.ones((meta.n_items, meta.d // 2), np.float32))  # graph wants d=16
    (d / META_JSON).unlink()
    fields = {k: v for k, v in dataclasses.asdict(meta).items() if k not in ("files", "format")}
    seal(d, fields | {"version": "v-wrong-shape", "d": meta.d // 2})  # checksums all valid
    return dataclasses.replace(good, version="v-wrong-shape", uri=str(d), sha256=artifact_digest(d))


def _missing(registry: Path, good: ArtifactRef) -> ArtifactRef:
    return dataclasses.replace(good, version="v-does-not-exist", uri=str(registry / "v-does-not-exist"))


FAULTS: list[Callable[[Path, ArtifactRef], ArtifactRef]] = [
    _truncated,
    _checksum_mismatch,
    _wrong_digest,
    _wrong_shape,
    _missing,
]


def test_bad_models_are_refused_and_the_previous_version_keeps_serving(
    wenv: WorkerEnv, tmp_path: Path, shared_model: tuple[Path, ArtifactRef]
) -> None:
    """Pass: for each of the five faults, announced one after the other, the worker's
    model_load_failures counter goes up by one, its served model version stays the good one, a
    new event still gets a feed computed by the good version, and the worker stays ready. Then
    a good new version is swapped in (refusals do not wedge the hot-swap)."""
    shared_registry, good = shared_model
    wenv.registry_dir = tmp_path / "registry"  # a private copy: this test writes bad artifacts
    shutil.copytree(shared_registry, wenv.registry_dir)
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        for n, fault in enumerate(FAULTS, start=1):
            bad = fault(wenv.registry_dir, good)
            announce(wenv.broker, wenv.topics["models"], bad)
            wait_until(
                lambda n=n: w.metric("streamrec_model_load_failures_total") == n,
                30,
                lambda bad=bad: f"{bad.version} not refused:\n{w.tail()}",
            )
            produce(wenv.broker, wenv.topics["events"], [("um", event(n, "um", f"item-{n}"))])

            def fed(n: int = n) -> bool:
                f = feeds(wenv.redis, wenv.feed_prefix, ["um"])["um"]
                return f is not None and f.event_id == f"e{n}"

            wait_until(fed, 30, lambda: w.tail())
            assert feeds(wenv.redis, wenv.feed_prefix, ["um"])["um"].model_version == good.version  # type: ignore[union-attr]
            assert w.get("/readyz")[0] == 200
            assert f"model {bad.version} refused" in w.tail(20_000)
        assert w.metric("streamrec_model_swaps_total") == 1
        newer = build_artifact(wenv.registry_dir, seed=1)
        announce(wenv.broker, wenv.topics["models"], newer)
        wait_until(lambda: w.metric("streamrec_model_swaps_total") == 2, 30, lambda: w.tail())
        time.sleep(0.2)
        produce(wenv.broker, wenv.topics["events"], [("um", event(99, "um", "item-99"))])
        wait_until(
            lambda: (f := feeds(wenv.redis, wenv.feed_prefix, ["um"])["um"]) is not None and f.event_id == "e99",
            30,
            lambda: w.tail(),
        )
        assert feeds(wenv.redis, wenv.feed_prefix, ["um"])["um"].model_version == newer.version  # type: ignore[union-attr]
