"""Artifacts are immutable, checksummed and published atomically; a damaged one is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.export_artifacts import build

from streamrec.serving.artifact import ArtifactError, artifact_digest, verify
from streamrec.serving.registry import LocalRegistry, open_registry


def _copy(artifact, tmp_path: Path) -> Path:
    registry, result = artifact
    dst = tmp_path / result.ref.version
    shutil.copytree(registry.fetch(result.ref.version), dst)
    return dst


def test_truncated_file_is_refused_with_its_name(artifact, tmp_path: Path) -> None:
    path = _copy(artifact, tmp_path)
    data = (path / "session.onnx").read_bytes()
    (path / "session.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"session\.onnx is corrupt or truncated"):
        verify(path)


def test_flipped_byte_in_items_is_refused(artifact, tmp_path: Path) -> None:
    path = _copy(artifact, tmp_path)
    data = bytearray((path / "items.npy").read_bytes())
    data[-1] ^= 0xFF
    (path / "items.npy").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"items\.npy is corrupt"):
        verify(path)


@pytest.mark.parametrize("damage", ["no_meta", "missing_file", "extra_file", "bad_json", "wrong_digest"])
def test_incomplete_or_tampered_artifacts_are_refused(artifact, tmp_path: Path, damage: str) -> None:
    path = _copy(artifact, tmp_path)
    expected = None
    if damage == "no_meta":
        (path / "meta.json").unlink()
    elif damage == "missing_file":
        (path / "item_ids.json").unlink()
    elif damage == "extra_file":
        (path / "evil.onnx").write_bytes(b"x")
    elif damage == "bad_json":
        (path / "meta.json").write_text("{not json")
    else:
        expected = "0" * 64
    with pytest.raises(ArtifactError):
        verify(path, expected)


def test_announced_digest_pins_the_meta(artifact) -> None:
    registry, result = artifact
    path = registry.fetch(result.ref.version)
    assert artifact_digest(path) == result.ref.sha256
    assert verify(path, result.ref.sha256).version == result.ref.version
    ann = result.ref.announcement()
    assert set(ann) == {"version", "sha256", "uri", "parent", "created", "metrics"}
    json.dumps(ann)


def test_versions_are_listed_in_order_pruned_and_never_overwritten(registry: LocalRegistry) -> None:
    refs = [build(registry, parent=None if i == 0 else "x").ref for i in range(3)]
    assert [r.version for r in registry.list()] == [r.version for r in refs]
    with registry.staging() as staging:
        shutil.copytree(registry.fetch(refs[0].version), staging, dirs_exist_ok=True)
        with pytest.raises(ArtifactError, match="immutable"):
            registry.publish(staging)
    assert registry.prune(1, protect=(refs[0].version,)) == [refs[1].version]
    assert [r.version for r in registry.list()] == [refs[0].version, refs[2].version]
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".")]


def test_open_registry_picks_the_backend(tmp_path: Path) -> None:
    assert open_registry("", tmp_path).root == tmp_path / "registry"  # type: ignore[union-attr]
    assert open_registry(f"file://{tmp_path}/r", tmp_path).root == tmp_path / "r"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="redis://"):
        open_registry("s3://bucket/x", tmp_path)
