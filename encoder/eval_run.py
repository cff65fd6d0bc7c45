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

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from streamrec.cooccurrence import Cooccurrence
from streamrec.datasets import Catalogue, EventLog
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.baselines import popularity_scores
from streamrec.encoder.cold_vectors import borrow_for_untrained
from streamrec.encoder.data import Sequences, build_sequences, catalogue_rows, gaps_of, held_out_items
from streamrec.encoder.evaluate import ScoreFn, memo_batch, model_score_fn, rank_many, summarize
from streamrec.encoder.hybrid import bonus_fn, hybrid_fn, session_fn, table_of, tune
from streamrec.encoder.mmr_sweep import sweep
from streamrec.encoder.model import Recommender
from streamrec.encoder.text import embed_texts
from streamrec.settings.hybrid import HybridSettings
from streamrec.text_models import locate, ref_from_config

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
    """The model's item matrix extended to rows it has never seen: from their text (cold start: the
    text projection, or the borrowed vectors of :mod:`streamrec.encoder.cold_vectors`), else zero
    vectors (score 0)."""
    base = torch.from_numpy(trained.item_matrix())  # [N0, d]
    extra = rows[len(trained.item_ids) :]
    if not extra:
        return base.to(device)
    vecs = torch.zeros(len(extra), base.shape[1])  # [E, d]
    proj = trained.text_projection
    ref = ref_from_config(trained.config.get("text_model"))
    if proj is not None and ref is not None and catalogue is not None:
        idx = catalogue.index()
        texts = [catalogue.text_of(idx[r]) if r in idx else "" for r in extra]
        max_tokens = int(trained.config.get("train", {}).get("text_max_tokens", 64))
        emb = embed_texts(
            texts, locate(ref), ref.sha256, max_tokens, cache_dir=cache_dir, progress=False, layers=trained.text_layers
        )
        has_text = torch.tensor([bool(t.strip()) for t in texts])
        emb = torch.from_numpy(emb) * has_text.unsqueeze(-1)  # [E, T]: no text, no neighbours
        with torch.no_grad():
            vecs = torch.nn.functional.normalize(proj(emb), dim=-1)
        vecs[~has_text] = 0.0
        cfg, tower = trained.model.cfg, trained.model.items
        if cfg.cold_neighbours:  # the rows the table never had borrow like its own untrained ones
            keys = torch.cat([tower.text_emb.float().cpu(), emb])  # [N0 + E, T]
            warm = torch.cat([tower.warm.cpu(), torch.zeros(len(extra), dtype=torch.bool)])  # [N0 + E]
            table = borrow_for_untrained(torch.cat([base, vecs]), keys, warm, cfg.cold_neighbours, cfg.cold_temperature)
            return table.to(device)
    return torch.cat([base, vecs]).to(device)


def _model_fn(
    model: Recommender,
    matrix: torch.Tensor,
    seqs: Sequences,
    users: list[int],
    cut: int,
    session_length: int,
    device: torch.device,
) -> tuple[list[np.ndarray], ScoreFn]:
    """Histories (each user's events but the last ``cut``) and the model's score function on them."""
    hist = [seqs.items[u][:-cut] for u in users]
    types = [seqs.types[u][:-cut] for u in users]
    gaps = [gaps_of(seqs.ts[u][:-cut]) for u in users] if model.cfg.time_gaps else None
    return hist, model_score_fn(model, matrix, hist, types, gaps, session_length, device)


def _validation(
    model: Recommender,
    matrix: torch.Tensor,
    seqs: Sequences,
    rows: list[str],
    keep_seen: bool,
    hybrid: HybridSettings,
    session_length: int,
    device: torch.device,
) -> dict:
    """Beta and normalisation of the hybrid chosen on the second-to-last event (module docstring
    of streamrec.encoder.hybrid): the co-occurrence table counts training parts only."""
    users = [u for u in range(len(seqs.users)) if len(seqs.items[u]) >= 3]
    hist, fn = _model_fn(model, matrix, seqs, users, 2, session_length, device)
    targets = np.array([seqs.items[u][-2] for u in users], dtype=np.int64)
    train = [seqs.items[u][seqs.train_part(u)] for u in range(len(seqs.users))]
    table = table_of(train, rows, hybrid)
    return tune(fn, table, hist, targets, keep_seen, ("max", "log"), repeat=hybrid.repeat(keep_seen), keys=users)


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


def _protocol(
    keep_seen: bool,
    users: int,
    n: int,
    cold: np.ndarray,
    cold_label: str,
    hybrid: HybridSettings,
    div_label: str,
    session_length: int,
) -> dict:
    """What the figures of one eval run were measured on."""
    return {
        "split": "leave-one-out: last event per user = test, history = all earlier events",
        "ordering": "by timestamp, same-second ties in file order",
        "ranking": "full catalogue",
        "exclude_seen": not keep_seen,
        "k": K,
        "users": users,
        "items": n,
        "cold_start_users": int(cold.sum()),
        "cold_start": cold_label,
        "cooccurrence": f"pairs <= {hybrid.window} steps apart in histories, last {hybrid.window} items weighted "
        f"1..{hybrid.window} by recency, at most {hybrid.max_neighbours} neighbours per item",
        "hybrid": "model score + beta x normalised co-occurrence bonus; 'hybrid' = the settings' beta/norm, "
        "'hybrid_validated' = the best on the second-to-last event (table counted on training parts); "
        f"its table weighs a pair k steps apart 1/k**{hybrid.distance_exponent:g}, its bonus divides by the "
        f"neighbour's total**{hybrid.popularity_exponent:g} and the session item's total**{hybrid.source_exponent:g}"
        + (
            f"; seen items kept: the session's last {hybrid.window} items add repeat_weight "
            f"{hybrid.repeat_weight:g} x the repeat share x k/{hybrid.window} (k = recency)"
            if keep_seen
            else ""
        )
        + f"; plus session_weight x the session-kNN votes (the {hybrid.session_neighbours} most similar of the "
        f"histories sharing an item, each session's best item = 1)",
        "session_knn": f"V-SKNN: a history is its last {hybrid.session_items} distinct items weighted i/n by "
        f"recency; similarity = shared weight / sqrt(neighbour length) over the latest {hybrid.sessions_per_item} "
        f"histories of each of its items; the {hybrid.session_neighbours} most similar vote with their similarity",
        "diversity": div_label,
        "category_coverage": "mean share of the catalogue's categories that a top-k list touches (with categories)",
        "session_length": session_length,
    }


SETTING_KEYS = ("beta", "norm", "popularity_exponent", "source_exponent", "repeat_weight", "session_weight")


def _hybrid(
    model_fn: ScoreFn, votes: ScoreFn, table: Cooccurrence, hist: list[np.ndarray], n: int, setting: dict
) -> ScoreFn:
    """``setting``'s repeat weight is the one for the protocol (``HybridSettings.repeat``);
    ``votes``: the session-kNN votes of ``table``'s index, shared by every method of the run."""
    shape = (setting["norm"], setting["popularity_exponent"], setting["source_exponent"], setting["repeat_weight"])
    return hybrid_fn(model_fn, bonus_fn(table, hist, n, *shape), setting["beta"], votes, setting["session_weight"])


def evaluate_run(
    log: EventLog,
    catalogue: Catalogue | None,
    trained: TrainedModel,
    keep_seen: bool,
    device: torch.device,
    cache_dir: Path | None = None,
    hybrid: HybridSettings | None = None,
    mmr_lambdas: Sequence[float] = (),
    pool: int = 80,
) -> dict:
    """The module docstring's protocol; ``mmr_lambdas`` adds the MMR sweep
    (:mod:`streamrec.encoder.mmr_sweep`) of the model and the hybrid over pools of ``pool``."""
    hybrid = hybrid or HybridSettings()
    rows = catalogue_rows(log, catalogue, base=trained.item_ids)
    seqs = build_sequences(log, {r: i for i, r in enumerate(rows)})
    users = [u for u in range(len(seqs.users)) if len(seqs.items[u]) >= 2]
    targets, n = np.array([seqs.items[u][-1] for u in users], dtype=np.int64), len(rows)
    cold, cold_label = _cold_slice(log, seqs, rows, targets, trained)  # [U]

    model = trained.model.to(device).eval()
    matrix = _item_matrix(trained, rows, catalogue, cache_dir, device)  # [N, d]
    session_length = int(trained.config.get("session_length", model.cfg.session_length))
    hist, model_fn = _model_fn(model, matrix, seqs, users, 1, session_length, device)
    model_fn = memo_batch(model_fn)  # one model pass per batch for the model and both hybrids
    cats = _category_vectors(rows, catalogue)  # [N, C] multi-hot, or None
    div, div_label = cats, "1 - cosine of category multi-hot vectors"
    if div is None:
        div, div_label = matrix.cpu().numpy(), "1 - cosine of the model's item vectors"

    validation = _validation(model, matrix, seqs, rows, keep_seen, hybrid, session_length, device)
    pop, table = popularity_scores(hist, n), table_of(hist, rows, hybrid)
    reference = table if not hybrid.distance_exponent else table_of(hist, rows, hybrid.reference(), sessions=False)
    setting = {k: getattr(hybrid, k) for k in SETTING_KEYS} | {"repeat_weight": hybrid.repeat(keep_seen)}
    chosen = {k: validation["best"][k] for k in SETTING_KEYS}
    votes = memo_batch(session_fn(table, hist, range(len(hist)), n))  # once per batch for the three users
    methods = {
        "model": model_fn,
        "hybrid": _hybrid(model_fn, votes, table, hist, n, setting),
        "hybrid_validated": _hybrid(model_fn, votes, table, hist, n, chosen),
        "popularity": lambda b: np.tile(pop, (len(b), 1)),
        "cooccurrence": bonus_fn(reference, hist, n, "raw"),
        "session_knn": votes,
    }
    results: dict[str, dict] = {}
    for name, (ranks, tops) in rank_many(methods, hist, targets, keep_seen, k=K).items():
        results[name] = summarize(ranks, tops, n, div, k=K, categories=cats)
        results[name]["cold_start"] = summarize(ranks[cold], tops[cold], n, div, k=K, categories=cats)
    results["hybrid"]["setting"], results["hybrid_validated"]["setting"] = setting, chosen
    served = {"model": methods["model"], "hybrid": methods["hybrid"]}  # what the worker's MMR re-ranks
    sweep_args = (matrix.cpu().numpy(), hist, targets, keep_seen, mmr_lambdas, pool, div)
    extra = {"mmr": sweep(served, *sweep_args, k=K) | {"diversity": div_label}} if mmr_lambdas else {}
    return extra | {
        "model": results["model"],
        "hybrid": results["hybrid"],
        "hybrid_validated": results["hybrid_validated"],
        "baselines": {name: results[name] for name in ("popularity", "cooccurrence", "session_knn")},
        "validation": validation,
        "protocol": _protocol(keep_seen, len(users), n, cold, cold_label, hybrid, div_label, session_length),
    }
