"""`streamrec train` then `streamrec eval` end to end on generated data with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamrec.cli import main
from streamrec.datasets import load_events, load_items
from streamrec.encoder import load_model_dir
from streamrec.encoder.data import held_out_items
from streamrec.sample import write_sample

TINY = ["--encoder-d-model", "32", "--encoder-n-layers", "1", "--encoder-n-negatives", "32", "--session-length", "20"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_sample(tmp_path_factory.mktemp("sample"), seed=0, n_users=150, n_items=120)


def test_train_then_eval(sample: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items, events = sample
    out = tmp_path / "model"
    common = [*TINY, "--data-dir", str(tmp_path / "state")]
    args = ["train", "--events", str(events), "--items", str(items), "--out", str(out), "--quiet"]
    rc = main([*args, *common, "--encoder-text-model", "none", "--encoder-epochs", "6", "--encoder-lr", "3e-3"])
    assert rc == 0
    trained = load_model_dir(out)
    assert trained.item_matrix().shape == (120, 32)
    assert trained.item_ids == load_items(items).item_ids
    assert trained.metrics["best_epoch"] >= 1

    report = tmp_path / "eval.json"
    rc = main(["eval", "--events", str(events), "--items", str(items), "--model", str(out), "--json", str(report)])
    assert rc == 0
    res = json.loads(report.read_text())
    assert set(res) == {
        "model",
        "hybrid",
        "hybrid_validated",
        "validation",
        "baselines",
        "protocol",
        "command",
        "trained",
    }
    assert set(res["baselines"]) == {"popularity", "cooccurrence", "session_knn"}
    assert res["hybrid_validated"]["setting"] == {
        k: res["validation"]["best"][k]
        for k in ("beta", "norm", "popularity_exponent", "source_exponent", "repeat_weight", "session_weight")
    }
    assert res["hybrid"]["setting"]["repeat_weight"] == 0.0  # seen items excluded: no repeat term
    assert trained.cooccurrence is not None and len(trained.cooccurrence) == 120  # the shipped base table
    for block in (res["model"], res["hybrid"], res["hybrid_validated"], *res["baselines"].values()):
        for key in ("hr@10", "ndcg@10", "mrr", "coverage", "diversity"):
            assert 0.0 <= block[key] <= 1.0
        assert block["users"] == 150
    assert res["model"]["ndcg@10"] > res["baselines"]["popularity"]["ndcg@10"]
    assert "cold start" in capsys.readouterr().out

    plot = tmp_path / "mmr.png"
    sweep_args = ["--mmr-lambda", "0.5,0", "--mmr-plot", str(plot), "--json", str(report), "--pool", "2"]
    assert main(["eval", "--events", str(events), "--items", str(items), "--model", str(out), *sweep_args]) == 0
    mmr = json.loads(report.read_text())["mmr"]
    assert plot.stat().st_size > 0 and mmr["pool"] == 40 and mmr["lambdas"] == [1.0, 0.5, 0.0]
    for name in ("model", "hybrid"):
        off, *on = mmr["methods"][name]
        assert {k: off[k] for k in ("hr@10", "ndcg@10", "diversity")} == {
            k: res[name][k] for k in ("hr@10", "ndcg@10", "diversity")
        }  # lambda 1 is the ranking the protocol scored
        assert on[-1]["diversity_item_vectors"] > off["diversity_item_vectors"]  # what MMR penalises
    assert mmr["chosen"]["lambda"] in mmr["lambdas"] and "MMR" in capsys.readouterr().out


def test_training_is_deterministic_by_seed(sample: tuple[Path, Path], tmp_path: Path) -> None:
    _, events = sample
    mats = []
    for name in ("a", "b"):
        out = tmp_path / name
        rc = main(["train", "--events", str(events), "--out", str(out), "--quiet", *TINY, "--encoder-epochs", "1"])
        assert rc == 0
        mats.append(load_model_dir(out).item_matrix())
    assert np.array_equal(mats[0], mats[1])


def test_bad_input_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train", "--events", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m")])
    assert rc == 2
    assert "no such file" in capsys.readouterr().err
    rc = main(["eval", "--events", str(tmp_path / "nope.csv"), "--model", str(tmp_path)])
    assert rc == 2


def test_sample_events_load(sample: tuple[Path, Path]) -> None:
    assert len(load_events(sample[1])) > 0


def test_seeds_and_held_out_items(
    sample: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, events = sample
    out = tmp_path / "models"
    common = [*TINY, "--data-dir", str(tmp_path / "state"), "--encoder-text-model", "none"]
    train = ["train", "--events", str(events), "--out", str(out), "--quiet", "--seeds", "2", "--encoder-epochs", "2"]
    assert main([*train, *common, "--encoder-hold-out-items", "0.2"]) == 0
    assert "over 2 seeds" in capsys.readouterr().out
    assert load_model_dir(out / "seed-1").config["train"]["seed"] == 1
    report = tmp_path / "eval.json"
    assert main(["eval", "--events", str(events), "--model", str(out), "--seeds", "2", "--json", str(report)]) == 0
    res = json.loads(report.read_text())
    assert res["seeds"] == [0, 1] and len(res["per_seed"]) == 2
    assert set(res["model"]["ndcg@10"]) == {"mean", "std"}
    assert "held out of training" in res["protocol"]["cold_start"]
    # the held-out items never reached training: no seed's model has a warm vector for them
    for seed in (0, 1):
        trained = load_model_dir(out / f"seed-{seed}")
        held = [trained.item_ids.index(i) for i in held_out_items(load_events(events), 0.2, seed)]
        assert not trained.model.items.warm[held].any()
    assert "±" in capsys.readouterr().out
