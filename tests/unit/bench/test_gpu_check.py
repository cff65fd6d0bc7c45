"""The GPU check (bench/gpu_check.sh, bench/gpu_check.py) on this CPU machine: its dry run writes
every part of the JSON the GPU run writes, a part past its time box is recorded and the next one
runs, and without a GPU both the script and ``--device cuda`` stop at once with one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from streamrec.bench import gpu_check
from streamrec.serving.providers import cuda_device_count

ROOT = Path(__file__).resolve().parents[3]


def test_dry_run_writes_every_part(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--dry-run", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    parts = result["parts"]
    assert list(parts) == list(gpu_check.PARTS) and result["ok"] is True
    assert {name: p["status"] for name, p in parts.items()} == {
        **dict.fromkeys(gpu_check.PARTS, "ok"),
        "ann": "not built",
        "e2e": "skipped",
    }
    model = parts["model"]
    assert model["runner"]["item_matrix_on"] == model["runner"]["device"] == "cpu"
    assert [r["batch"] for r in model["runs"]] == [1, 64]
    assert all(r["onnxruntime_vs_torch"] > 0 for r in model["runs"])
    assert parts["precision"]["top5_agreement_fp16_vs_fp32"] == pytest.approx(1.0)  # both fp32 on the CPU
    assert [s["items"] for s in parts["catalogue"]["sizes"]] == [1_000, 2_000]
    assert all(r["fp32_sessions_per_s"] > 0 for s in parts["catalogue"]["sizes"] for r in s["runs"])
    assert parts["trainer"]["cpu"]["updates_per_s"] > 0 and parts["trainer"]["cpu"]["parameters_on"] == "cpu"
    assert result["targets"]["onnxruntime_vs_torch_batch1"] == model["runs"][0]["onnxruntime_vs_torch"]
    assert result["machine"]["device"] == "cpu" and "onnxruntime" in result["checked"]


def test_a_part_past_its_time_box_is_recorded_and_the_run_goes_on(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(gpu_check.PART_FNS, "ann", lambda _ctx: time.sleep(5) or {})
    ctx = gpu_check.Context(gpu_check.CheckConfig.dry_run(), tmp_path)
    t0 = time.monotonic()
    got = gpu_check.run_part("ann", ctx, 1.5)
    assert got["status"] == "timeout" and time.monotonic() - t0 < 4
    late = gpu_check.run_part("ann", ctx, 0.5)  # no time left: not started
    assert late["status"] == "timeout" and late["error"].startswith("not started")


def test_failing_part_is_recorded_with_its_error(tmp_path: Path) -> None:
    ctx = gpu_check.Context(gpu_check.CheckConfig.dry_run(), tmp_path)
    got = gpu_check.run_part("model", ctx, 30)  # no export ran first
    assert got["status"] == "error" and "no artifact" in got["error"]


@pytest.fixture()
def no_gpu() -> None:
    if cuda_device_count()[0] > 0 or shutil.which("nvidia-smi"):
        pytest.skip("this machine has a GPU")


@pytest.mark.usefixtures("no_gpu")
def test_device_cuda_without_a_gpu_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gpu_check: device=cuda, but "), err
    assert not out.exists()


@pytest.mark.usefixtures("no_gpu")
def test_the_script_without_a_gpu_stops_before_installing(tmp_path: Path) -> None:
    got = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), str(tmp_path / "out.json")],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "GPU_CHECK_VENV": str(tmp_path / "venv")},
    )
    assert got.returncode == 2 and got.stderr.strip() == (
        "gpu_check: no NVIDIA GPU here (nvidia-smi not found); run it on a GPU machine"
    )
    assert not (tmp_path / "venv").exists()
