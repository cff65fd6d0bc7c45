"""``streamrec eval --mmr-lambda``: what the worker's MMR re-rank costs in accuracy and buys in
diversity, under the leave-one-out protocol of :mod:`streamrec.encoder.eval_run`.

Per method (the model alone, and the hybrid the worker serves), each user's candidate pool is
the best ``pool`` items (the size the serving graph returns: ``k x pool`` of the settings) after
seen items are excluded, as the graph returns it; :func:`streamrec.rerank.mmr`, the worker's own
function, picks the top 10 from it for each lambda. MMR is greedy and its relevance scaling is
per pool, so the top 10 of a 20-item feed re-ranked from the same pool are these 10. A target
the re-rank pushed out of the top 10 counts as a miss; one it pulled in counts at its new
position. Diversity is the eval's own yardstick (category words when the catalogue has them)
and, besides it, 1 - cosine of the model's item vectors, which MMR itself penalises.

The default lambda is read off this curve: the highest NDCG@10 among the lambdas that raise
the served method's diversity by ``DIVERSITY_GAIN`` or more while losing at most ``NDCG_LOSS``
of its NDCG@10 (both relative to lambda = 1, MMR off in the same run); none -> MMR stays off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamrec.encoder.evaluate import ScoreFn, rank_pools, summarize
from streamrec.encoder.metrics import intra_list_diversity
from streamrec.rerank import mmr

DIVERSITY_GAIN, NDCG_LOSS = 0.15, 0.03
SERVED = "hybrid"  # the method the worker serves: its curve picks the default


def _reranked(rows: np.ndarray, scores: np.ndarray, vectors: np.ndarray, lam: float, k: int) -> np.ndarray:
    """Pools (``rows`` [U, P], their ``scores``) -> the top-``k`` rows [U, k] MMR picks from each."""
    tops = np.empty((len(rows), k), np.int64)
    for start in range(0, len(rows), 256):  # [256, P, P] similarities at a time
        part = slice(start, start + 256)
        picks = mmr(scores[part], vectors[rows[part]], k, lam)  # [b, k]
        full = (picks >= 0).all(axis=1, keepdims=True)  # a pool with fewer than k candidates keeps its order
        tops[part] = np.where(full, np.take_along_axis(rows[part], np.maximum(picks, 0), 1), rows[part, :k])
    return tops


def sweep(
    methods: dict[str, ScoreFn],
    vectors: np.ndarray,
    histories: list[np.ndarray],
    targets: np.ndarray,
    keep_seen: bool,
    lambdas: Sequence[float],
    pool: int,
    div: np.ndarray,
    k: int = 10,
) -> dict:
    """Each method's figures per lambda (1.0, MMR off, always included), and the chosen lambda.
    ``vectors`` [N, d]: the model's item vectors (what the worker's MMR compares); ``div``: the
    diversity yardstick's vectors."""
    lambdas = sorted({1.0, *lambdas}, reverse=True)
    n = len(vectors)
    out: dict = {"pool": pool, "lambdas": lambdas, "methods": {}}
    for name, (ranks, rows, scores) in rank_pools(methods, histories, targets, keep_seen, pool).items():
        points = []
        for lam in lambdas:
            tops = _reranked(rows, scores, vectors, lam, k)
            at = tops == targets[:, None]  # [U, k]
            new_ranks = np.where(at.any(axis=1), at.argmax(axis=1), np.maximum(ranks, k))
            res = summarize(new_ranks, tops, n, div, k=k)
            res.pop("mrr")  # undefined below the re-ranked top k
            res["diversity_item_vectors"] = intra_list_diversity(tops, vectors)
            points.append({"lambda": lam, **res})
        base = points[0]
        for p in points:
            p["ndcg_change"] = p[f"ndcg@{k}"] / base[f"ndcg@{k}"] - 1.0 if base[f"ndcg@{k}"] else 0.0
            p["diversity_change"] = p["diversity"] / base["diversity"] - 1.0 if base["diversity"] else 0.0
        out["methods"][name] = points
    out["chosen"] = choose(out["methods"].get(SERVED) or next(iter(out["methods"].values())))
    return out


def choose(points: list[dict]) -> dict:
    """The lambda that meets both targets with the highest NDCG@10, or 1.0 (off) with the reason."""
    rule = f"diversity >= +{DIVERSITY_GAIN:.0%} and NDCG@10 >= -{NDCG_LOSS:.0%} relative to lambda = 1 (MMR off)"
    meets = [p for p in points if p["lambda"] < 1.0 and p["diversity_change"] >= DIVERSITY_GAIN]
    meets = [p for p in meets if p["ndcg_change"] >= -NDCG_LOSS]
    if not meets:
        return {"lambda": 1.0, "rule": rule, "met": False}
    best = max(meets, key=lambda p: (p["ndcg@10"], p["lambda"]))
    return {"lambda": best["lambda"], "rule": rule, "met": True}


def plot_sweep(result: dict, path: Path, title: str) -> None:
    """NDCG@10 against intra-list diversity, one line per method, each point labelled by lambda."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in result["methods"].items():
        x, y = [p["diversity"] for p in points], [p["ndcg@10"] for p in points]
        ax.plot(x, y, marker="o", label=name)
        for p in points:
            point = (p["diversity"], p["ndcg@10"])
            ax.annotate(f"{p['lambda']:g}", point, fontsize=7, xytext=(3, 3), textcoords="offset points")
    base = (result["methods"].get(SERVED) or next(iter(result["methods"].values())))[0]
    ax.axvline(base["diversity"] * (1 + DIVERSITY_GAIN), color="grey", linestyle=":", linewidth=1)
    ax.axhline(base["ndcg@10"] * (1 - NDCG_LOSS), color="grey", linestyle=":", linewidth=1)
    chosen = result["chosen"]
    ax.set_xlabel(f"intra-list diversity of the top 10 ({result.get('diversity', '')})")
    ax.set_ylabel("NDCG@10")
    ax.set_title(
        f"{title}\nMMR over a pool of {result['pool']}; labels: lambda; chosen {chosen['lambda']:g}\n"
        f"dotted: the {SERVED}'s targets (+{DIVERSITY_GAIN:.0%} diversity, -{NDCG_LOSS:.0%} NDCG@10)",
        fontsize=9,
    )
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
