"""Text tower input: item text -> language-model embedding, cached per catalogue version.

The language model is run once per catalogue (not per training step): by default only the small
projection on top of it is trained (fine-tuning its top layers: :mod:`.text_finetune`). The
result is cached under a key made of the model's weights checksum, the token limit and every
item text, so a changed catalogue recomputes and an unchanged one loads in milliseconds. Items
without text get a zero row and never reach the language model (a catalogue without any text
trains ID-only: see the offline trainer).

This is the torch side (offline training, evaluation, and the reference the exported
``text.onnx`` is checked against); serving embeds with onnxruntime
(:mod:`streamrec.serving.text_tower`), the same graph.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamrec.errors import UserError

log = logging.getLogger(__name__)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a (partial) state dict: the name of fine-tuned text-model layers in configs and
    artifact metas, next to the stock model's own checksum, and part of the text.onnx cache key."""
    h = hashlib.sha256()
    for name, value in sorted(state.items()):
        h.update(name.encode())
        h.update(value.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


def cache_key(model_sha256: str, max_tokens: int, texts: list[str]) -> str:
    h = hashlib.sha256(f"{model_sha256}\0{max_tokens}\0".encode())
    for text in texts:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class MeanPooled(nn.Module):
    """Token ids [B, t] + attention mask [B, t] -> mean-pooled, L2-normalised embedding [B, T]:
    the language-model half of ``text.onnx``."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.lm(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
        ).last_hidden_state  # [B, t, T]
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # [B, t, 1]
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, T]: mean over real tokens
        return F.normalize(pooled, dim=-1)  # [B, T]


class TextModel:
    """A loaded text model (a local directory: weights + tokenizer). Loading takes ~1 s on 2 cores
    and ~90 MB, so processes that embed repeatedly load it once and keep it; :func:`embed_texts`
    loads it per call."""

    def __init__(
        self,
        directory: str | Path,
        device: str = "cpu",
        batch_size: int = 64,
        layers: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """``layers``: fine-tuned layers (a partial state dict, :mod:`streamrec.encoder.text_finetune`)
        put over the stock weights, so this is the tuned model."""
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
            lm = AutoModel.from_pretrained(str(directory), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load text model {directory}: {str(exc).splitlines()[0][:200]}") from exc
        if layers:
            unknown = lm.load_state_dict(layers, strict=False).unexpected_keys
            if unknown:
                raise UserError(f"fine-tuned text layers do not fit the text model {directory}: {unknown[0]} ...")
        self.pooled = MeanPooled(lm).to(device).eval()
        self.dim = int(lm.config.hidden_size)
        self.directory, self.device, self.batch_size = Path(directory), device, batch_size

    def tokenize(self, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
        tok = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        return {k: tok[k].to(self.device) for k in ("input_ids", "attention_mask")}

    def embed(self, texts: Sequence[str], max_tokens: int, progress: bool = False) -> np.ndarray:
        """float32 [N, T]; a text that is empty (or only blanks) gets a zero row."""
        from tqdm import tqdm

        out = np.zeros((len(texts), self.dim), np.float32)
        rows = [i for i, t in enumerate(texts) if t.strip()]
        batches = range(0, len(rows), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(batches, desc="text embeddings", unit="batch", disable=not progress):
                chunk = rows[start : start + self.batch_size]
                out[chunk] = self.pooled(**self.tokenize([texts[i] for i in chunk], max_tokens)).float().cpu().numpy()
        return out


def embed_texts(
    texts: list[str],
    directory: Path,
    model_sha256: str,
    max_tokens: int = 64,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
    layers: dict[str, torch.Tensor] | None = None,
) -> np.ndarray:
    """Embeddings float32 [N, T] of ``texts`` by the model in ``directory`` (whose weights hash
    to ``model_sha256``; with fine-tuned ``layers`` over it; cached when ``cache_dir``)."""
    weights = f"{model_sha256}+{state_digest(layers)}" if layers else model_sha256
    path = cache_dir / f"text-{cache_key(weights, max_tokens, texts)}.npy" if cache_dir else None
    if path is not None and path.is_file():
        log.info("text embeddings from cache %s", path)
        return np.load(path)
    emb = TextModel(directory, device, batch_size, layers).embed(texts, max_tokens, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)  # atomic: a crashed run never leaves a half cache file
    return emb
