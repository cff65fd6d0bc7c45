"""Cold start: new items announced with text but no vector get one from the live model's text
tower (``text.onnx`` in the artifact: tokenizer -> language model -> pooling -> projection, run
by onnxruntime; no torch in the worker). Which updates need one is the catalogue overlay's
call (:meth:`streamrec.streams.catalogue.CatalogueOverlay.to_embed`); this runs the tower, in a
thread, outside the catalogue lock, so scoring continues meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from streamrec.contracts.items import ItemUpdate
from streamrec.streams.model_slot import Runner

log = logging.getLogger(__name__)


def embed_updates(runner: Runner, updates: Sequence[ItemUpdate]) -> dict[str, np.ndarray]:
    """Item vectors float32 [d] by item id, from the updates' texts (blocking: call it from a
    thread); empty when the runner has no text tower."""
    if not updates:
        return {}
    t0 = time.perf_counter()
    vecs = runner.text_vectors([u.text or "" for u in updates])
    if vecs is None:
        return {}
    log.info("cold start: %d items embedded from text (%.0f ms)", len(updates), 1000 * (time.perf_counter() - t0))
    return {u.item_id: v for u, v in zip(updates, vecs, strict=True)}
