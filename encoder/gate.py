"""The promotion rule: one decision for the online trainer's candidates and ``streamrec retrain``'s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GateResult:
    """The candidate's and the served model's metrics on the same ``n`` held-back examples."""

    candidate: dict[str, float]
    served: dict[str, float]
    promote: bool
    n: int


def promotes(candidate: dict[str, float], served: dict[str, float], tolerance: float) -> bool:
    """The candidate may not lose more than ``tolerance`` NDCG@10 against the served model on the
    same held-back examples (a tie promotes: the candidate is the fresher of the two)."""
    return candidate["ndcg@10"] >= served["ndcg@10"] - tolerance
