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


def test_interest_page_compares_each_m_with_one_under_the_target(tmp_path: Path) -> None:
    from streamrec.bench.interests_report import report

    def run(m: int, ndcg: float, cats: float) -> dict:
        metrics = {"hr@10": 2 * ndcg, "ndcg@10": ndcg}
        lists = {"coverage": 0.1, "diversity": 0.5, "category_coverage": cats}
        return {
            "command": "python -m streamrec.bench.ablation ...",
            "data": "toy",
            "variant": f"m{m}",
            "overrides": {"interests": m},
            "settings": {"interests": m},
            "seed": 0,
            "epochs": 3,
            "s_per_epoch": 2.0,
            "test": metrics,
            "test_hybrid": metrics,
            "lists": {"model": lists, "hybrid": lists},
            "baselines": {"cooccurrence": metrics},
        }

    path = tmp_path / "runs.jsonl"
    runs = [run(1, 0.10, 0.30), run(2, 0.095, 0.34), run(4, 0.08, 0.40)]  # M=2 within 0.008 and +13%
    path.write_text("\n".join(map(json.dumps, runs)) + "\n")
    page = report([path])
    assert "| model | 2 | -0.0050 | +13.3% | yes |" in page
    assert "| model | 4 | -0.0200 | +33.3% | no |" in page
    assert "meet the target at M = 2" in page
    assert "| toy | m4 | 0.1000 | 0.5000 | 0.4000 |" in page  # the top-10 lists' table
