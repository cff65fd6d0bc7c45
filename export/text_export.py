"""``text.onnx``: the text tower of a model with text, exported and checked against torch.

The graph is token ids + attention mask -> the language model (with the layers training tuned,
if any) -> mean pooling -> L2 norm
(``text_embedding``) -> the trained text projection -> L2 norm (``item_vec``), batch and token
axes dynamic, read by :class:`streamrec.serving.text_tower.TextTower`. The parity check runs the
written file the way serving does (``tokenizers`` + onnxruntime) on golden texts (empty-ish, short,
longer than the token limit, non-ASCII, one alone and a mixed batch) plus real item texts when
given, against eager torch on the ``transformers`` tokenizer's output: max abs error on both
outputs within 1e-4, or the artifact is not written.

Exporting MiniLM takes seconds and the file is large (``export_seconds``, ``text_onnx_bytes`` in
bench/text_tower.json), while the online trainer exports a version every few promotions with the
projection frozen: a checked file is kept in a cache under a key of everything it is made of (text
model checksum, fine-tuned layers, projection weights, opset, torch version) and copied from there, the same bytes
every time, so workers share one session.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.text import TextModel, state_digest
from streamrec.export.parity import ParityError
from streamrec.serving.text_tower import TEXT_INPUTS, TEXT_OUTPUTS, TextTower
from streamrec.text_models import TextModelRef, locate, ref_from_config

log = logging.getLogger(__name__)
OPSET = 17
ATOL = 1e-4  # measured errors are ~1e-7; room for other CPUs' kernels
KEEP_CACHED = 3
GOLDEN_TEXTS = (
    "x",
    "Toy Story (1995). Animation Children's Comedy",
    "trail running shoes, waterproof; size 44",
    "Crème brûlée à la française — 12 Rezepte für Anfänger: schnell, einfach, lecker",
    "a very long description " + " ".join(f"word{i}" for i in range(600)),
    "日本語のタイトル",
)


@dataclass(frozen=True)
class TextSpec:
    """What a text tower is made of: the text model, the trained projection, the token limit."""

    ref: TextModelRef
    projection: nn.Module
    max_tokens: int
    search_dirs: tuple[Path, ...] = ()  # where the text model is looked for before the wheel
    cache_dir: Path | None = None  # checked text.onnx files, reused while nothing changed
    layers: dict[str, torch.Tensor] | None = None  # fine-tuned layers over ``ref`` (None = stock)
    fine_tuned: dict[str, Any] | None = None  # how they were tuned + their sha256 (model config)

    def meta(self) -> dict[str, Any]:
        """The artifact meta's ``text`` entry. With fine-tuned layers, ``model`` is the base (its
        tokenizer, and its other layers inside ``text.onnx``) and ``fine_tuned`` names the rest."""
        meta = {"model": self.ref.as_dict(), "max_tokens": self.max_tokens}
        if self.fine_tuned is not None:
            meta["fine_tuned"] = self.fine_tuned
        return meta


@dataclass(frozen=True)
class TextParity:
    texts: int
    max_abs_err_text_embedding: float
    max_abs_err_item_vec: float
    passed: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def text_spec(
    trained: TrainedModel, search_dirs: Sequence[Path] = (), cache_dir: Path | None = None
) -> TextSpec | None:
    """The text tower of a trained model, None for an ID-only one or a test's injected encoder
    (which has no model to export: its artifacts need vectors in catalogue messages)."""
    ref = ref_from_config(trained.config.get("text_model"))
    if ref is None or trained.text_projection is None:
        return None
    max_tokens = int(trained.config.get("train", {}).get("text_max_tokens", 64))
    return TextSpec(
        ref,
        trained.text_projection,
        max_tokens,
        tuple(search_dirs),
        cache_dir,
        trained.text_layers,
        trained.config.get("text_finetune") if trained.text_layers is not None else None,
    )


class TextGraph(nn.Module):
    """(input_ids, attention_mask) int64 [B, t] -> (text_embedding [B, T], item_vec [B, d])."""

    def __init__(self, pooled: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.pooled, self.projection = pooled, projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.pooled(input_ids, attention_mask)  # [B, T]
        return emb, F.normalize(self.projection(emb), dim=-1)  # [B, T], [B, d]


def cache_key(spec: TextSpec) -> str:
    h = hashlib.sha256(f"{spec.ref.sha256}\0{spec.max_tokens}\0{OPSET}\0{torch.__version__}\0".encode())
    if spec.layers:
        h.update(state_digest(spec.layers).encode())
    h.update(state_digest(spec.projection.state_dict()).encode())
    return h.hexdigest()[:32]


def export_text_tower(spec: TextSpec, path: Path, texts: Sequence[str] = ()) -> TextParity:
    """Write ``text.onnx`` for ``spec`` to ``path`` (from its cache when a checked copy is there),
    checked on the golden texts and ``texts``; raises :class:`ParityError` when onnxruntime does
    not reproduce torch."""
    search_dirs = spec.search_dirs
    cached = spec.cache_dir / f"text-{cache_key(spec)}.onnx" if spec.cache_dir is not None else None
    if cached is not None and cached.is_file() and cached.with_suffix(".json").is_file():
        shutil.copyfile(cached, path)
        return TextParity(**json.loads(cached.with_suffix(".json").read_text()))
    model_dir = locate(spec.ref, search_dirs)
    lm = TextModel(model_dir, layers=spec.layers)
    graph = TextGraph(lm.pooled, spec.projection.eval()).eval()
    sample = lm.tokenize(list(GOLDEN_TEXTS[:3]), spec.max_tokens)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings from inside transformers
        torch.onnx.export(
            graph,
            (sample["input_ids"], sample["attention_mask"]),
            str(path),
            dynamo=False,
            input_names=list(TEXT_INPUTS),
            output_names=list(TEXT_OUTPUTS),
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "text_embedding": {0: "batch"},
                "item_vec": {0: "batch"},
            },
            opset_version=OPSET,
        )
    report = check_text_parity(path, graph, lm, spec, search_dirs, [*GOLDEN_TEXTS, *texts])
    if not report.passed:
        path.unlink(missing_ok=True)
        raise ParityError(f"text.onnx failed parity: {report.reason}")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        shutil.copyfile(path, tmp)
        cached.with_suffix(".json").write_text(json.dumps(report.as_dict()))
        tmp.replace(cached)  # the .onnx last: a crash never leaves an unchecked file to reuse
        _prune(cached.parent)
    return report


def _prune(cache_dir: Path) -> None:
    """Keep the newest KEEP_CACHED towers (an online-trained projection makes a new one each
    export: ~90 MB apiece)."""
    files = sorted(cache_dir.glob("text-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_CACHED:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def check_text_parity(
    path: Path,
    graph: TextGraph,
    lm: TextModel,
    spec: TextSpec,
    search_dirs: Sequence[Path],
    texts: Sequence[str],
) -> TextParity:
    """The serving path (tokenizers + onnxruntime, as one batch and one text alone) against
    eager torch on the transformers tokenizer's output."""
    from streamrec.serving.artifact import sha256_file

    tower = TextTower.load(path, sha256_file(path), spec.meta(), search_dirs)
    with torch.no_grad():
        ref_emb, ref_vec = (t.numpy() for t in graph(**lm.tokenize(list(texts), spec.max_tokens)))
        one_emb, one_vec = (t.numpy() for t in graph(**lm.tokenize(list(texts[:1]), spec.max_tokens)))
    emb, vec = tower.embed(list(texts))
    emb1, vec1 = tower.embed(list(texts[:1]))
    err_emb = float(max(np.abs(emb - ref_emb).max(), np.abs(emb1 - one_emb).max()))
    err_vec = float(max(np.abs(vec - ref_vec).max(), np.abs(vec1 - one_vec).max()))
    reason = ""
    if not (np.isfinite(emb).all() and np.isfinite(vec).all()):
        reason = "NaN/inf in text.onnx outputs"
    elif max(err_emb, err_vec) > ATOL:
        reason = f"max abs error {max(err_emb, err_vec):.3g} > {ATOL:g}"
    return TextParity(len(texts), err_emb, err_vec, not reason, reason)
