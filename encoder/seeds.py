"""Noise across seeds: a result is a mean ± std over several training seeds, so a change is kept
only when it moves the mean by more than the seeds move it (``streamrec train/eval --seeds N``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """-> {"mean", "std"} (sample std, 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std}


def seed_dir(out: Path, seed: int) -> Path:
    """Where ``streamrec train --seeds N`` writes the model of one seed."""
    return out / f"seed-{seed}"


def summarize_seeds(results: Iterable[dict]) -> dict:
    """Per-seed result dicts of the same shape -> the same shape with every number replaced by
    {"mean", "std"} over the seeds (strings and other leaves are taken from the first)."""
    results = list(results)
    first = results[0]
    if isinstance(first, dict):
        return {k: summarize_seeds([r[k] for r in results]) for k in first if all(k in r for r in results)}
    if isinstance(first, bool) or not isinstance(first, int | float):
        return first
    return mean_std([float(r) for r in results])
