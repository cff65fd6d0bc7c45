"""``streamrec export`` end to end on a tiny trained-model directory."""

from __future__ import annotations

from pathlib import Path

import torch
from support.export_artifacts import N_ITEMS, L, item_ids

from streamrec.cli import main
from streamrec.serving.registry import LocalRegistry
from streamrec.serving.runner import Runner


def _model_dir(tmp_path: Path) -> Path:
    from streamrec.encoder import TrainedModel, save_model_dir
    from streamrec.encoder.model import ModelConfig, Recommender

    torch.manual_seed(0)
    model = Recommender(ModelConfig(d=16, n_heads=2, session_length=L, n_items=N_ITEMS)).eval()
    return save_model_dir(tmp_path / "model", TrainedModel(model, item_ids(), {}, {"ndcg@10": 0.1}))


def test_export_command_prints_version_and_parity_and_prunes(tmp_path: Path, capsys) -> None:
    model = _model_dir(tmp_path)
    out = tmp_path / "registry"
    for _ in range(3):
        assert main(["export", "--model", str(model), "--out", str(out), "--k", "10", "--registry-keep", "2"]) == 0
    text = capsys.readouterr().out
    assert "parity fp32" in text and "untied 100%" in text and "version v" in text and "pruned" in text
    refs = LocalRegistry(out).list()
    assert len(refs) == 2 and refs[-1].metrics == {"ndcg@10": 0.1}
    runner = Runner.load(refs[-1].uri, "cpu")
    assert len(runner.recommend([item_ids()[:3]], [["click"] * 3])[0][0]) == 10


def test_export_command_refuses_a_missing_model(tmp_path: Path, capsys) -> None:
    assert main(["export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "no such directory" in capsys.readouterr().err
