"""Served lists as hard negatives: shown digests resolve to the trainer's rows (top first, the
clicked item, the session's and ambiguous digests left out), each counts ``weight`` times in its
own row's softmax, the gradient pushes shown items' scores down, and weight 0 is today's loss."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from support.tiny_model import chain_examples, tiny_trained

from streamrec.contracts.feed_digest import feed_digest, short_digest
from streamrec.contracts.training_batch import Example
from streamrec.encoder.hard_negatives import ShownRows, padded
from streamrec.encoder.losses import next_item_infonce
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import row_tensors
from streamrec.settings.encoder import EncoderSettings, TrainerSettings


def _colliding_pair() -> tuple[str, str]:
    """Two item ids with one 24-bit digest (a birthday search: ~5k ids)."""
    seen: dict[bytes, str] = {}
    n = 0
    while True:
        item = f"x{n}"
        other = seen.setdefault(short_digest(item), item)
        if other != item:
            return other, item
        n += 1


def test_shown_digests_resolve_to_rows_top_first_without_ambiguous_ones() -> None:
    a, b = _colliding_pair()
    table = [f"i{n}" for n in range(6)] + [a, b]
    rows = ShownRows()
    rows.extend(table)
    shown = feed_digest("v1", [a, "i3", "i1", "i5", "never-seen", "i4", "i2"])
    assert rows.resolve(shown, skip={1}, n=3) == [3, 5, 4]  # a: ambiguous; i1: skipped; unknown: dropped
    assert rows.resolve(shown, skip=set(), n=10) == [3, 1, 5, 4, 2]
    assert rows.resolve("", skip=set(), n=10) == []
    table.append("never-seen")  # a row added later (an item first seen in an event) resolves from then on
    rows.extend(table)
    assert rows.resolve(shown, skip=set(), n=10) == [3, 1, 5, 8, 4, 2]


def _toy(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sessions = F.normalize(torch.randn(3, 8, generator=g), dim=-1)  # [P, d]
    cands = F.normalize(torch.randn(5, 8, generator=g), dim=-1)  # [C, d]
    hard = F.normalize(torch.randn(3, 2, 8, generator=g), dim=-1)  # [P, H, d]
    return sessions, torch.tensor([0, 3, 1]), cands, hard


def test_each_hard_negative_counts_weight_times_in_its_own_row_only() -> None:
    sessions, targets, cands, hard = _toy()
    weight, T = 2.5, 0.1
    _, log_w = padded([[7, 8], [9], []], weight, torch.device("cpu"))  # row 1: one, row 2: none (padding)
    loss = next_item_infonce(sessions, targets, cands, None, T, hard=(hard, log_w))
    expected = 0.0
    for p in range(3):
        z = cands @ sessions[p] / T  # [C]
        own = (hard[p] @ sessions[p] / T).exp()[: [2, 1, 0][p]].sum()
        expected += -float(z[targets[p]] - torch.log(z.exp().sum() + weight * own))
    assert math.isclose(float(loss), expected / 3, rel_tol=1e-5)
    chunked = next_item_infonce(sessions, targets, cands, None, T, max_logits=5, hard=(hard, log_w))  # 1 row a chunk
    assert math.isclose(float(chunked), float(loss), rel_tol=1e-5)
    all_padding = torch.full((3, 2), -math.inf)
    no_hard = next_item_infonce(sessions, targets, cands, None, T)
    assert math.isclose(
        float(next_item_infonce(sessions, targets, cands, None, T, hard=(hard, all_padding))),
        float(no_hard),
        rel_tol=1e-6,
    )


def test_the_gradient_pushes_shown_scores_down() -> None:
    sessions, targets, cands, hard = _toy(1)
    sessions.requires_grad_(True)
    hard.requires_grad_(True)
    _, log_w = padded([[1, 2], [3], [4, 5]], 1.0, torch.device("cpu"))
    next_item_infonce(sessions, targets, cands, None, 0.1, hard=(hard, log_w)).backward()
    assert sessions.grad is not None and hard.grad is not None
    # d loss / d (session . shown) > 0: a descent step lowers every shown item's score, padding gets none
    d_score = (hard.grad * sessions.detach().unsqueeze(1)).sum(-1)  # [P, H]
    assert bool((d_score[torch.isfinite(log_w)] > 0).all()) and float(d_score[1, 1]) == 0.0


def _shown_examples(n: int, seed: int, n_items: int = 40) -> list[Example]:
    """Chain examples whose user was shown the item two steps past the target, and skipped it."""
    out = []
    for ex in chain_examples(n, seed):
        skipped = f"i{(int(ex.next_item[1:]) + 2) % n_items}"
        out.append(dataclasses.replace(ex, shown=feed_digest("v0", [skipped, ex.next_item])))
    return out


def _train(settings: TrainerSettings, examples: list[Example], steps: int = 30) -> tuple[OnlineLearner, list]:
    torch.manual_seed(0)
    learner = OnlineLearner(tiny_trained(), settings, EncoderSettings(n_negatives=16, temperature=0.1, seed=0))
    learner.add(examples, entered_at=0.0)
    return learner, [learner.step() for _ in range(steps)]


def _skipped_probability(learner: OnlineLearner) -> float:
    """Mean softmax probability, over the whole catalogue, of the shown-but-skipped item on the
    held-back rows."""
    rows = list(learner.holdout)
    idx, types, mask = row_tensors(rows, learner.device)
    with torch.no_grad():
        learner.model.eval()
        logits = learner.model.encode_sessions(idx, types, mask) @ learner.model.items().T / 0.1  # [B, N]
    skipped = torch.tensor([(r.target + 2) % 40 for r in rows])  # [B]
    return float(logits.softmax(-1)[torch.arange(len(rows)), skipped].mean())


def test_shown_items_become_negatives_and_weight_zero_is_todays_loss() -> None:
    base = {"holdout_size": 200, "buffer_size": 5000, "update_batch": 64, "lr": 3e-3}
    examples = _shown_examples(1200, seed=5)
    without_shown = [dataclasses.replace(ex, shown="") for ex in examples]
    _, today = _train(TrainerSettings(**base), without_shown)  # examples of a worker from before `shown`
    _, weight0 = _train(TrainerSettings(**base, hard_negatives=10, hard_negative_weight=0.0), examples)
    assert weight0 == today  # the same losses, bit for bit
    plain, _ = _train(TrainerSettings(**base, hard_negatives=0), examples)
    hard, _ = _train(TrainerSettings(**base, hard_negatives=10, hard_negative_weight=4.0), examples)
    # measured: 0.0068 vs 0.0114 after 30 steps (and 0.00019 vs 0.00047 after 120)
    assert _skipped_probability(hard) < 0.75 * _skipped_probability(plain)
