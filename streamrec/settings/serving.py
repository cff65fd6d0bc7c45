"""Settings section of approximate nearest-neighbour retrieval (streamrec.serving.ann): read by
the exporter, which builds the index into the artifact from ``ann_min_items`` items, and by
the worker, which serves through it from the same size."""

from __future__ import annotations

from pydantic import Field

from streamrec.settings.base import Section


class ServingSettings(Section):
    """Below ``ann_min_items`` the worker scores the whole catalogue in the one serving graph; from
    it, the session vector goes to the artifact's ANN index and only its candidates are re-scored
    exactly. 0 turns the index off (never built, never served)."""

    ann_min_items: int = Field(
        100_000,
        ge=0,
        description="build (export) and serve (worker) an ANN index from this catalogue size; 0 = never "
        "(the crossover with brute force: bench/RESULTS.md, ANN)",
    )
    ann_nprobe: int = Field(
        16, ge=1, le=65_536, description="inverted lists the ANN index scans per session (more: recall up, speed down)"
    )
    ann_candidates: int = Field(
        100,
        ge=1,
        le=10_000,
        description="candidates per session the ANN index returns for the exact re-score "
        "(at least the results asked for + the session length)",
    )
