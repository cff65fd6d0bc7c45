"""Cold start: an item never seen in training, known only by its text, ranks well for a user
whose history is about the same thing. A catalogue without text trains ID-only (the text model
never runs); items with and without text mix (no text: no text part)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch

from streamrec.contracts.session_rows import left_pad
from streamrec.datasets import Catalogue
from streamrec.encoder.trainer import Trainer
from streamrec.sample import generate_sample
from streamrec.settings.encoder import EncoderSettings

DIM = 64


def bag_of_words(texts: list[str]) -> np.ndarray:
    """A cheap stand-in for the language model: hashed bag of words, L2-normalised."""
    out = np.zeros((len(texts), DIM), np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().replace(",", " ").replace(".", " ").replace(";", " ").split():
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_new_item_with_related_text_ranks_above_random() -> None:
    catalogue, log = generate_sample(0, n_users=150, n_items=120)
    settings = EncoderSettings(d_model=32, n_layers=1, epochs=8, lr=3e-3, n_negatives=32, cl_weight=0.0)
    trainer = Trainer(log, catalogue, settings, 20, torch.device("cpu"), progress=False, text_encoder=bag_of_words)
    trained = trainer.fit()
    model, proj = trained.model, trained.text_projection
    assert proj is not None
    matrix = model.items()  # [N, d]
    index = trained.item_index()
    percentiles = []
    for user, events in list(log.by_user().items())[:60]:
        # A brand-new item (no id embedding) described like the user's latest item: a re-release.
        text = catalogue.text_of(index[events[-1].item_id])
        with torch.no_grad():
            cold = torch.nn.functional.normalize(proj(torch.from_numpy(bag_of_words([text]))), dim=-1)[0]  # [d]
            items, mask = left_pad([np.array([index[e.item_id] for e in events])], 20)
            types = torch.ones(1, 20, dtype=torch.long)
            sess = model.session(matrix[torch.from_numpy(items)], types, torch.from_numpy(mask))[0]  # [d]
            scores = matrix @ sess  # [N]
            percentiles.append(float((scores > cold @ sess).float().mean()))
        assert user
    # Random placement would sit at the 50th percentile on average.
    assert np.mean(percentiles) < 0.35


def _blank(catalogue: Catalogue, keep: int) -> Catalogue:
    """``catalogue`` with every item after the first ``keep`` stripped of title, category and text."""
    n = len(catalogue)
    blank = [""] * (n - keep)
    return dataclasses.replace(
        catalogue,
        titles=catalogue.titles[:keep] + blank,
        texts=catalogue.texts[:keep] + blank,
        categories=catalogue.categories[:keep] + blank,
    )


def test_a_catalogue_without_text_trains_id_only_without_the_text_model() -> None:
    catalogue, log = generate_sample(0, n_users=40, n_items=30)

    def never(texts: list[str]) -> np.ndarray:
        raise AssertionError("the text model must not run when no item has text")

    settings = EncoderSettings(d_model=16, n_layers=1, epochs=1, n_negatives=8)
    trainer = Trainer(log, _blank(catalogue, 0), settings, 8, torch.device("cpu"), progress=False, text_encoder=never)
    trained = trainer.fit()
    assert trained.model_config.text_dim == 0 and trained.text_projection is None
    assert trained.config["text_model"] is None


def test_items_with_and_without_text_mix() -> None:
    catalogue, log = generate_sample(0, n_users=40, n_items=30)
    settings = EncoderSettings(d_model=16, n_layers=1, epochs=1, n_negatives=8)
    mixed = _blank(catalogue, 15)
    trained = Trainer(log, mixed, settings, 8, torch.device("cpu"), progress=False, text_encoder=bag_of_words).fit()
    index, text_emb = mixed.index(), trained.model.items.text_emb
    has_text = np.array([bool(mixed.text_of(index[i]).strip()) for i in trained.item_ids])
    assert has_text.any() and not has_text.all()
    assert not text_emb[torch.from_numpy(~has_text)].any()  # no text: no text part (not a shared "empty" text)
    assert text_emb[torch.from_numpy(has_text)].abs().sum(dim=1).gt(0).all()
    assert np.isfinite(trained.item_matrix()).all()
