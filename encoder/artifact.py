"""The model directory written by ``streamrec train`` and read by eval and export.

Layout (docs/contracts.md, "Model directory")::

    config.json     {"model": ModelConfig, "text_model": {"id", "sha256"}|null, "train": {...}, "format": 1}
    weights.pt      state_dict of the Recommender (both towers, text embeddings, warm mask)
    item_ids.json   catalogue ids in row order
    items.npy       float32 [N, d] item matrix (the same rows ``item_matrix()`` returns)
    metrics.json    validation and training figures
    cooccurrence.npz  optional: the co-occurrence table counted on the training log (the hybrid's
                      base table, shipped in every artifact exported from this directory)
    text_layers.pt  with a fine-tuned language model (config ``text_finetune``): its tuned layers,
                    a partial state dict of the text model ``text_model`` names

Written into a temporary sibling and renamed into place, so a reader never sees half a model
(docs/architecture.md, invariant 3); an existing directory is replaced only after the new one is complete.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from streamrec.cooccurrence import FILE_NAME as COOCCURRENCE_NPZ
from streamrec.cooccurrence import Cooccurrence
from streamrec.encoder.model import ModelConfig, Recommender, SessionTower
from streamrec.errors import UserError

FORMAT = 1
FILES = ("config.json", "weights.pt", "item_ids.json", "items.npy", "metrics.json")
TEXT_LAYERS = "text_layers.pt"


@dataclass
class TrainedModel:
    """A trained recommender as the rest of streamrec sees it."""

    model: Recommender
    item_ids: list[str]
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    cooccurrence: Cooccurrence | None = None
    # Fine-tuned language-model layers over the stock text model (None = the stock model, frozen).
    text_layers: dict[str, torch.Tensor] | None = None

    @property
    def session_tower(self) -> SessionTower:
        return self.model.session

    @property
    def text_projection(self) -> nn.Module | None:
        """Maps text-model embeddings [N, T] to the pre-normalisation item vector [N, d] (None without text)."""
        return self.model.items.text_proj

    @property
    def model_config(self) -> ModelConfig:
        return self.model.cfg

    def item_matrix(self) -> np.ndarray:
        """float32 [N, d], rows in ``item_ids`` order."""
        self.model.eval()
        with torch.no_grad():
            return self.model.items().detach().cpu().numpy().astype(np.float32)

    def trained_rows(self) -> np.ndarray:
        """bool [N]: rows with a trained id embedding (seen in training, not appended cold)."""
        return self.model.items.warm.detach().cpu().numpy().astype(np.bool_)

    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}


def save_model_dir(out: str | Path, trained: TrainedModel) -> Path:
    """Write ``trained`` to ``out`` atomically (temp dir + rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        config = dict(trained.config)
        config["model"] = asdict(trained.model.cfg)
        config["format"] = FORMAT
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        state = {k: v.detach().cpu() for k, v in trained.model.state_dict().items()}
        torch.save(state, tmp / "weights.pt")
        (tmp / "item_ids.json").write_text(json.dumps(trained.item_ids))
        np.save(tmp / "items.npy", trained.item_matrix())
        (tmp / "metrics.json").write_text(json.dumps(trained.metrics, indent=2, sort_keys=True))
        if trained.cooccurrence is not None:
            trained.cooccurrence.save(tmp / COOCCURRENCE_NPZ)
        if trained.text_layers is not None:
            torch.save(trained.text_layers, tmp / TEXT_LAYERS)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_model_dir(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Read a model directory; a missing or inconsistent one is a :class:`UserError`."""
    path = Path(path)
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise UserError(f"{path}: not a model directory (missing {', '.join(missing)})")
    try:
        config = json.loads((path / "config.json").read_text())
        model_fields = dict(config["model"])
        if "max_len" in model_fields:  # model directories saved before the field was renamed
            model_fields["session_length"] = model_fields.pop("max_len")
        cfg = ModelConfig(**model_fields)
        item_ids = json.loads((path / "item_ids.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
        state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        model = Recommender(cfg)
        model.load_state_dict(state)
        table = Cooccurrence.load(path / COOCCURRENCE_NPZ) if (path / COOCCURRENCE_NPZ).is_file() else None
        layers = None
        if config.get("text_finetune"):
            # Without them the stock layers would stand in for the tuned ones: refuse instead.
            if not (path / TEXT_LAYERS).is_file():
                raise UserError(f"{path}: the model fine-tuned its text model but {TEXT_LAYERS} is missing")
            layers = torch.load(path / TEXT_LAYERS, map_location="cpu", weights_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UserError(f"{path}: unreadable model directory ({type(exc).__name__}: {str(exc)[:200]})") from exc
    if len(item_ids) != cfg.n_items:
        raise UserError(f"{path}: item_ids.json has {len(item_ids)} ids, the model {cfg.n_items} rows")
    model.to(device).eval()
    return TrainedModel(
        model=model, item_ids=item_ids, config=config, metrics=metrics, cooccurrence=table, text_layers=layers
    )


def pack_model_dir(model_dir: str | Path, tar_path: str | Path) -> None:
    """The files of a model directory as one uncompressed tar (flat: names only), so a registry
    artifact can carry the model a trainer continues from (``streamrec retrain``)."""
    with tarfile.open(tar_path, "w") as tar:
        for f in sorted(Path(model_dir).iterdir()):
            if f.is_file():
                tar.add(f, arcname=f.name)


def unpack_model_dir(tar_path: str | Path, out: str | Path) -> TrainedModel:
    """The model directory packed by :func:`pack_model_dir`, written to ``out`` atomically (temp dir +
    rename; an existing ``out`` is kept as it is) and loaded. Members other than plain files with
    plain names are refused (``UserError``): the tar comes from another pod."""
    out = Path(out)
    if not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            with tarfile.open(tar_path, "r") as tar:
                members = tar.getmembers()
                bad = [m.name for m in members if not m.isfile() or "/" in m.name or m.name.startswith(".")]
                if bad:
                    raise UserError(f"{tar_path}: not a packed model directory (member {bad[0]!r})")
                tar.extractall(tmp, members=members, filter="data")
            tmp.rename(out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return load_model_dir(out)


def on_cpu(trained: TrainedModel) -> TrainedModel:
    """``trained`` with its model on the CPU: itself when it is there, else a CPU copy (the
    learner keeps training its own on the GPU)."""
    if next(trained.model.parameters()).device.type == "cpu":
        return trained
    return dataclasses.replace(trained, model=copy.deepcopy(trained.model).cpu())
