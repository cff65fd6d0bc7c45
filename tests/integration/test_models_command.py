"""``streamrec models announce``: rolling back is announcing an older verified version; a
corrupted version is refused before anything is announced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from streamrec.cli import main
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.model import ModelConfig, Recommender
from streamrec.export.exporter import export_model
from streamrec.kafka import read_topic
from streamrec.local.services import EmbeddedServices
from streamrec.serving.registry import open_registry

pytestmark = pytest.mark.integration


def _export_two(data_dir: Path) -> list[str]:
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=8, dropout=0.0, n_items=30)
    trained = TrainedModel(Recommender(cfg), [f"i{j}" for j in range(30)], {})
    registry = open_registry("", data_dir)
    return [
        export_model(
            trained.session_tower, trained.item_ids, trained.item_matrix(), registry, k=5, session_length=8
        ).ref.version
        for _ in range(2)
    ]


def test_announce_older_version_rolls_back(services: EmbeddedServices, unique_prefix: str, tmp_path: Path) -> None:
    old, new = _export_two(tmp_path)
    common = ["--data-dir", str(tmp_path), "--broker", services.broker, "--topics-models", f"{unique_prefix}.models"]
    assert main(["models", "announce", *common]) == 0
    assert main(["models", "announce", old, *common]) == 0
    records = read_topic(services.broker, f"{unique_prefix}.models", min_count=2)
    assert [json.loads(r.value)["version"] for r in records] == [new, old]
    assert {r.key for r in records} == {b"model"}  # one compaction key: the latest wins


def test_corrupt_version_is_not_announced(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, _ = _export_two(tmp_path)
    onnx = tmp_path / "registry" / old / "session.onnx"
    onnx.write_bytes(onnx.read_bytes()[:100])
    common = ["--data-dir", str(tmp_path), "--broker", services.broker, "--topics-models", f"{unique_prefix}.models"]
    assert main(["models", "announce", old, *common]) != 0
    assert "corrupt or truncated" in capsys.readouterr().err
    assert read_topic(services.broker, f"{unique_prefix}.models", timeout_s=2) == []
