"""``streamrec eval``: the model and two baselines under one leave-one-out protocol, in one run.

Per user (time order, same-second ties in file order): the last event is the test target, the
history is everything before it. Scores cover the whole catalogue; seen items are excluded
unless ``keep_seen``. The cold-start slice keeps the users whose test item never occurs in
the training part (all but each user's last two events), the items the model only knows
from text; for a model trained with ``hold_out_items``, the users whose test item is one of
the items it was trained without. The baselines are fit on every user's history, held-out
items included, so on that slice popularity knows what the model was never shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from streamrec.datasets import Catalogue, EventLog
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.baselines import CooccurrenceKNN, popularity_scores
from streamrec.encoder.data import Sequences, build_sequences, catalogue_rows, gaps_of, held_out_items
from streamrec.encoder.evaluate import model_score_fn, rank_all, summarize
from streamrec.encoder.text import embed_texts

K = 10


def _category_vectors(rows: list[str], catalogue: Catalogue | None) -> np.ndarray | None:
    """Multi-hot category words per row: a model-independent yardstick for diversity."""
    if catalogue is None or not any(catalogue.categories):
        return None
    idx = catalogue.index()
    vocab: dict[str, int] = {}
    words = [catalogue.categories[idx[r]].lower().split() if r in idx else [] for r in rows]
    for ws in words:
        for w in ws:
            vocab.setdefault(w, len(vocab))
    out = np.zeros((len(rows), max(len(vocab), 1)), np.float32)
    for i, ws in enumerate(words):
        for w in ws:
            out[i, vocab[w]] = 1.0
    return out


def _item_matrix(
    trained: TrainedModel, rows: list[str], catalogue: Catalogue | None, cache_dir: Path | None, device: torch.device
) -> torch.Tensor:
    """The model's item matrix extended to rows it has never seen: from their text through the
    text projection when there is text (cold start), else zero vectors (score 0)."""
    base = torch.from_numpy(trained.item_matrix())  # [N0, d]
    extra = rows[len(trained.item_ids) :]
    if not extra:
        return base.to(device)
    vecs = torch.zeros(len(extra), base.shape[1])  # [E, d]
    proj = trained.text_projection
    text_model = trained.config.get("text_model")
    if proj is not None and text_model and text_model != "injected" and catalogue is not None:
        idx = catalogue.index()
        texts = [catalogue.text_of(idx[r]) if r in idx else "" for r in extra]
        max_tokens = int(trained.config.get("train", {}).get("text_max_tokens", 64))
        emb = embed_texts(texts, text_model, max_tokens, cache_dir=cache_dir, progress=False)
        with torch.no_grad():
            vecs = torch.nn.functional.normalize(proj(torch.from_numpy(emb)), dim=-1)
        has_text = torch.tensor([r in idx for r in extra])
        vecs[~has_text] = 0.0
    return torch.cat([base, vecs]).to(device)


def _cold_slice(
    log: EventLog, seqs: Sequences, rows: list[str], targets: np.ndarray, trained: TrainedModel
) -> tuple[np.ndarray, str]:
    """-> (which test users are cold [U] bool, what that means). With ``hold_out_items`` in the
    model's training settings: the users whose test item is one of the held-out items (the model
    never saw them); otherwise those whose test item never occurs in any training part."""
    train_cfg = trained.config.get("train", {})
    held = held_out_items(log, float(train_cfg.get("hold_out_items", 0.0)), int(train_cfg.get("seed", 0)))
    if held:
        label = f"users whose test item is one of the {len(held)} items held out of training (hold_out_items)"
        return np.array([rows[t] in held for t in targets], dtype=bool), label
    train_items = np.zeros(len(rows), bool)
    for u in range(len(seqs.users)):
        train_items[seqs.items[u][seqs.train_part(u)]] = True
    return ~train_items[targets], "users whose test item never occurs in the training part"


def evaluate_run(
    log: EventLog,
    catalogue: Catalogue | None,
    trained: TrainedModel,
    keep_seen: bool,
    device: torch.device,
    cache_dir: Path | None = None,
) -> dict:
    rows = catalogue_rows(log, catalogue, base=trained.item_ids)
    index = {r: i for i, r in enumerate(rows)}
    seqs = build_sequences(log, index)
    users = [u for u in range(len(seqs.users)) if len(seqs.items[u]) >= 2]
    hist = [seqs.items[u][:-1] for u in users]
    types = [seqs.types[u][:-1] for u in users]
    targets = np.array([seqs.items[u][-1] for u in users], dtype=np.int64)
    n = len(rows)
    cold, cold_label = _cold_slice(log, seqs, rows, targets, trained)  # [U]

    model = trained.model.to(device).eval()
    matrix = _item_matrix(trained, rows, catalogue, cache_dir, device)  # [N, d]
    session_length = int(trained.config.get("session_length", model.cfg.session_length))
    gaps = [gaps_of(seqs.ts[u][:-1]) for u in users] if model.cfg.time_gaps else None
    div = _category_vectors(rows, catalogue)
    div_label = "1 - cosine of category multi-hot vectors"
    if div is None:
        div, div_label = matrix.cpu().numpy(), "1 - cosine of the model's item vectors"

    pop = popularity_scores(hist, n)
    knn = CooccurrenceKNN(hist, n, window=5)
    methods = {
        "model": model_score_fn(model, matrix, hist, types, gaps, session_length, device),
        "popularity": lambda b: np.tile(pop, (len(b), 1)),
        "cooccurrence": lambda b: knn.scores([hist[u] for u in b]),
    }
    results: dict[str, dict] = {}
    for name, fn in methods.items():
        ranks, tops = rank_all(fn, hist, targets, keep_seen, k=K)
        res = summarize(ranks, tops, n, div, k=K)
        res["cold_start"] = summarize(ranks[cold], tops[cold], n, div, k=K)
        results[name] = res
    return {
        "model": results["model"],
        "baselines": {"popularity": results["popularity"], "cooccurrence": results["cooccurrence"]},
        "protocol": {
            "split": "leave-one-out: last event per user = test, history = all earlier events",
            "ordering": "by timestamp, same-second ties in file order",
            "ranking": "full catalogue",
            "exclude_seen": not keep_seen,
            "k": K,
            "users": len(users),
            "items": n,
            "cold_start_users": int(cold.sum()),
            "cold_start": cold_label,
            "cooccurrence": "pairs <= 5 steps apart in histories, last 5 items weighted 1..5 by recency",
            "diversity": div_label,
            "session_length": session_length,
        },
    }
