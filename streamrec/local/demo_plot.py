"""The demo's PNG: throughput, event->feed latency and online hit rate over the replay."""

from __future__ import annotations

import math
from pathlib import Path

from streamrec.local.demo_run import Timeline


def plot_timeline(tl: Timeline, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [p.t for p in tl.points]
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(t, [p.events_per_s for p in tl.points], color="tab:blue")
    axes[0].set_ylabel("events/s (worker)")
    axes[1].plot(t, [p.p50_ms for p in tl.points], label="p50")
    axes[1].plot(t, [p.p99_ms for p in tl.points], label="p99")
    axes[1].set_ylabel("event→feed ms")
    axes[1].legend()
    axes[2].plot(t, [p.hit_rate if not math.isnan(p.hit_rate) else None for p in tl.points], color="tab:green")
    axes[2].set_ylabel("hit rate@10 (last 200)")
    axes[2].set_xlabel("seconds since replay start")
    versions = [
        (p.t, p.model_version)
        for i, p in enumerate(tl.points)
        if i and p.model_version != tl.points[i - 1].model_version
    ]
    for ax in axes:
        for x, _ in versions:
            ax.axvline(x, color="grey", linestyle=":", linewidth=1)
    axes[0].set_title("streamrec demo (dotted: model swaps)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
