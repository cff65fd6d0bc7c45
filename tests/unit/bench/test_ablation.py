"""The ablation sweep's plumbing: variant parsing and the mean ± std table (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

from streamrec.bench.ablation import parse_variant, table


def test_variant_values_are_read_as_json() -> None:
    assert parse_variant("default:") == ("default", {})
    assert parse_variant("f:filter_mix=0.5,logq=false,text_model=none") == (
        "f",
        {"filter_mix": 0.5, "logq": False, "text_model": "none"},
    )


def test_table_is_mean_and_std_over_seeds(tmp_path: Path) -> None:
    def run(seed: int, ndcg: float) -> dict:
        metrics = {"hr@10": 2 * ndcg, "ndcg@10": ndcg}
        return {
            "data": "toy",
            "variant": "v",
            "overrides": {"d_model": 64},
            "seed": seed,
            "epochs": 3,
            "s_per_epoch": 2.0,
            "test": metrics,
            "baselines": {"cooccurrence": metrics},
        }

    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(run(s, n)) for s, n in ((0, 0.1), (1, 0.3))) + "\n")
    row = table([path]).splitlines()[2]
    assert "| toy | v | d_model=64 | 2 | 3 |" in row
    assert "0.2000 ± 0.1414" in row  # NDCG@10 mean and sample std
