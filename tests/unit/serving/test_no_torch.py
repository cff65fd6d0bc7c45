"""The worker side runs without torch: ``streamrec worker --help``, importing the whole worker,
loading a Runner (verify, open, warm up, score) and embedding item text with its text tower
leave no torch or transformers module loaded (each in a fresh interpreter; docs/architecture.md, invariant 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.text_artifact import MiniLMModel
from support.worker_harness import build_artifact

REPORT = (
    "import sys, json\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))"
)


def _heavy_modules(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\n{REPORT}"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_worker_help_loads_no_torch() -> None:
    code = "from streamrec.cli import main\ntry:\n    main(['worker', '--help'])\nexcept SystemExit:\n    pass"
    assert _heavy_modules(code) == []


def test_importing_the_worker_loads_no_torch() -> None:
    assert _heavy_modules("import streamrec.streams.worker, streamrec.streams.app") == []


@pytest.mark.timeout(180)
def test_loading_and_running_a_runner_loads_no_torch(tmp_path: Path) -> None:
    ref = build_artifact(tmp_path / "registry")
    code = (
        "from streamrec.serving.runner import Runner\n"
        f"r = Runner.load({ref.uri!r}, 'cpu')\n"
        "assert r.recommend([['item-1']], [['click']])[0][0]"
    )
    assert _heavy_modules(code) == []


@pytest.mark.timeout(240)
def test_embedding_text_with_a_runner_loads_no_torch(tmp_path: Path, minilm_model: MiniLMModel) -> None:
    """Cold start from text: the artifact's text.onnx, tokenized by ``tokenizers``."""
    ref = minilm_model.export(tmp_path / "registry")
    code = (
        "from streamrec.serving.runner import Runner\n"
        f"r = Runner.load({ref.uri!r}, 'cpu')\n"
        "v = r.text_vectors(['a new telescope guide about comets'])\n"
        "assert v is not None and v.shape == (1, r.d)"
    )
    assert _heavy_modules(code) == []
