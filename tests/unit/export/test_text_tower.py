"""``text.onnx`` with the real MiniLM: exported and parity-checked with every artifact of a model
with text, reused from the cache when nothing changed, run without torch by the Runner and the
trainer (whose cold row for a new item is the worker's vector for it); an artifact whose text
model is missing or different fails to load, naming it."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from support.text_artifact import MiniLMModel

from streamrec.contracts.items import ItemUpdate
from streamrec.encoder.cold_vectors import borrow_for_untrained
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.text import TextModel
from streamrec.export.text_export import KEEP_CACHED, _prune
from streamrec.serving.artifact import TEXT_ONNX, ArtifactError, verify
from streamrec.serving.runner import Runner
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.text_models import BUNDLED_ID, TextModelRef, bundled_dir, locate, ref_from_config
from streamrec.trainer.items import CatalogueSync, artifact_text_encoder


def _torch_vectors(m: MiniLMModel, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    proj = m.trained.text_projection
    assert proj is not None
    emb = TextModel(locate(_ref(m))).embed(texts, 64)
    with torch.no_grad():
        vec = torch.nn.functional.normalize(proj(torch.from_numpy(emb)), dim=-1).numpy()
    return emb, vec


def _ref(m: MiniLMModel) -> TextModelRef:
    ref = ref_from_config(m.trained.config["text_model"])
    assert ref is not None
    return ref


def test_artifact_carries_a_checked_text_tower_named_portably(minilm_model: MiniLMModel, tmp_path: Path) -> None:
    ref = minilm_model.export(tmp_path / "registry")
    meta = verify(Path(ref.uri))
    assert TEXT_ONNX in meta.files and "trained_rows.npy" in meta.files
    assert meta.text["model"] == {"id": BUNDLED_ID, "sha256": _ref(minilm_model).sha256}
    assert "site-packages" not in json.dumps(meta.config)  # no path of this machine
    parity = meta.parity["text"]
    assert parity["passed"] and parity["max_abs_err_item_vec"] <= 1e-4 and parity["max_abs_err_text_embedding"] <= 1e-4
    again = verify(Path(minilm_model.export(tmp_path / "registry").uri))
    assert again.files[TEXT_ONNX] == meta.files[TEXT_ONNX]  # same tower: the cached file, same bytes


def test_runner_embeds_like_torch_and_knows_its_trained_rows(minilm_model: MiniLMModel, tmp_path: Path) -> None:
    runner = Runner.load(minilm_model.export(tmp_path / "registry").uri, "cpu")
    texts = [*list(minilm_model.texts().values())[:20], "A brand-new telescope guide about comets"]
    vecs = runner.text_vectors(texts)
    assert vecs is not None
    emb, ref_vecs = _torch_vectors(minilm_model, texts)
    assert np.abs(vecs - ref_vecs).max() <= 1e-4
    warm = minilm_model.trained.trained_rows()
    assert runner.trained(minilm_model.trained.item_ids) == warm.tolist()
    assert runner.trained(["never-seen"]) == [False]
    # The trainer's encoder is the same tower's text-model half: what its cold rows hold.
    encoder = artifact_text_encoder(Path(runner.directory))
    assert encoder is not None and np.abs(encoder(texts) - emb).max() <= 1e-4


def _linked_model(directory: Path) -> Path:
    """A copy of the bundled model under another id (files linked, not copied)."""
    source = bundled_dir()
    assert source is not None
    directory.mkdir(parents=True)
    for f in source.iterdir():
        if f.is_file():
            os.symlink(f, directory / f.name)
    return directory


def test_a_missing_or_different_text_model_fails_the_load_naming_it(minilm_model: MiniLMModel, tmp_path: Path) -> None:
    models = tmp_path / "models"
    _linked_model(models / "team-minilm")
    registry = tmp_path / "registry"
    ref = minilm_model.export(registry, search_dirs=(models,), model_id="team-minilm")
    path = Path(ref.uri)
    assert verify(path).text["model"]["id"] == "team-minilm"
    with pytest.raises(ArtifactError, match=r"team-minilm.*not found"):
        Runner.load(path, "cpu")  # not in the wheel, no directory configured
    other = tmp_path / "other" / "team-minilm"
    other.mkdir(parents=True)
    (other / "model.safetensors").write_bytes(b"not these weights")
    with pytest.raises(ArtifactError, match=r"team-minilm.*has sha256"):
        Runner.load(path, "cpu", text_model_dirs=[tmp_path / "other"])
    assert Runner.load(path, "cpu", text_model_dirs=[models]).text is not None


def test_the_trainers_cold_row_is_the_workers_vector(minilm_model: MiniLMModel, tmp_path: Path) -> None:
    """The worker's vector for a new item is its text projection, the trainer's cold row the same
    text's; the trainer's next export carries that row's borrowed vector (its text neighbours'
    trained vectors), or, with borrowing off, exactly the worker's."""
    runner = Runner.load(minilm_model.export(tmp_path / "registry").uri, "cpu")
    trained = copy.deepcopy(minilm_model.trained)
    learner = OnlineLearner(trained, TrainerSettings(holdout_size=16), EncoderSettings())
    sync = CatalogueSync(learner, artifact_text_encoder(Path(runner.directory)))
    text = "A brand-new telescope guide about comets and nebulae"
    sync.handle([ItemUpdate("brand-new", True, text)])
    assert sync.pump(wait=True) == 1
    worker_vec = runner.text_vectors([text])
    assert worker_vec is not None
    row, cfg = learner.index["brand-new"], trained.model.cfg
    borrowed = trained.item_matrix()[row]
    cfg.cold_neighbours, k = 0, cfg.cold_neighbours
    projected = trained.item_matrix()
    assert np.abs(projected[row] - worker_vec[0]).max() <= 1e-4
    tower = trained.model.items
    expect = borrow_for_untrained(torch.from_numpy(projected), tower.text_emb, tower.warm, k, cfg.cold_temperature)
    assert np.abs(borrowed - expect[row].numpy()).max() <= 1e-5 and np.abs(borrowed - worker_vec[0]).max() > 1e-3


def test_the_tower_cache_keeps_the_newest_few(tmp_path: Path) -> None:
    for i in range(KEEP_CACHED + 2):
        (tmp_path / f"text-{i}.onnx").write_bytes(b"x")
        (tmp_path / f"text-{i}.json").write_text("{}")
        os.utime(tmp_path / f"text-{i}.onnx", (i, i))
    _prune(tmp_path)
    kept = sorted(p.name for p in tmp_path.glob("text-*.onnx"))
    assert kept == [f"text-{i}.onnx" for i in range(2, KEEP_CACHED + 2)]
    assert not (tmp_path / "text-0.json").exists()
