"""PyTorch models (text tower, session tower), losses, offline trainer and evaluation.

The worker imports :mod:`streamrec.encoder.text` (cold start) and must start without loading
torch, so this package does not import torch eagerly: the public names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamrec.encoder.artifact import TrainedModel, load_model_dir, save_model_dir
    from streamrec.encoder.model import ModelConfig, SessionTower

__all__ = ["ModelConfig", "SessionTower", "TrainedModel", "load_model_dir", "save_model_dir"]

_LAZY = {
    "TrainedModel": "streamrec.encoder.artifact",
    "load_model_dir": "streamrec.encoder.artifact",
    "save_model_dir": "streamrec.encoder.artifact",
    "ModelConfig": "streamrec.encoder.model",
    "SessionTower": "streamrec.encoder.model",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
