"""Multi-interest sessions: M vectors per session instead of one (``ModelConfig.interests``).

One vector per session has to sit between a user's unrelated tastes (a horror fan who also
watches cartoons), so it ranks neither well. ComiRec-SA (Cen et al., KDD 2020; its
``ComiRec_SA`` model) pools the sequence's hidden states H [L, d] with M attention heads of
their own, A = softmax over positions of W2 tanh(W1 H^T) [M, L], interests = A H [M, d]: each
head learns which items it gathers.

Here interest m = h_t + g_m (A H)_m: the newest position's output h_t (the single session
vector, which attends from the newest item) plus a gated pooled offset, the gates g starting at
0, so M interests start as M copies of the one vector and move apart only as far as the loss
pays for. ComiRec's pooling alone has no query from the newest item: on ml-100k (M = 2, epoch 6
of the 30-epoch bench) it trained to a higher loss than M = 1 (6.57 vs 6.09) and a lower
validation NDCG@10 (0.053 vs 0.081; docs/results/ablation-ml100k-interests-stopped.json).

Causal pooling: training predicts the next item at every position at once (the tower's
``forward_all``), so the interests after position t may pool positions <= t only. A head's
logit depends on the key position alone, so this is the same masked softmax as the tower's
causal attention with one query per position; the interests at the newest position, the ones
serving reads, are computed exactly as in training.

Serving gives each item its best interest's score (:func:`max_over_interests`), and training
uses the same scores: the target is scored against the interest nearest to it (the "argmax" rule
of ComiRec and MIND) and so is every negative, in one softmax (``losses.next_item_infonce``).
ComiRec contrasts only the target's interest with the negatives; its other interests then never
meet a negative, and the max at serving lets them rank anything. On ml-100k (M = 2, pooling
alone, epoch 6), that rule reached M = 1's training loss (6.09 vs 6.09) at about half its
validation NDCG@10 (0.043 vs 0.081; the same file).
:func:`nearest_interest` picks the target's interest where one vector per example is needed
(the supervised contrastive term) and the interest that scored the served top item.
"""

from __future__ import annotations

import torch
from torch import nn


class InterestPooling(nn.Module):
    """The newest output state plus a gated causal multi-head attentive pooling of all of them
    (ComiRec-SA's W1, W2; the hidden width is d where ComiRec's is 4d, so the head costs about one
    more d x d layer)."""

    def __init__(self, d: int, interests: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d, d)
        self.w2 = nn.Linear(d, interests, bias=False)
        self.gate = nn.Parameter(torch.zeros(interests, 1))  # [M, 1]: how far each interest leaves h_t

    def forward(self, h: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """h [B, L, d], mask [B, L] bool -> interests [B, L, M, d] after every prefix (position t:
        h_t + its gated pooling of positions <= t), or [B, 1, M, d] for the newest one with
        ``last_only``; not normalised."""
        L = h.shape[1]
        logits = self.w2(torch.tanh(self.w1(h))).transpose(1, 2)  # [B, M, L]: one logit per head and key
        pos = torch.arange(L, device=h.device)  # [L]
        causal = pos.unsqueeze(1) >= pos.unsqueeze(0)  # [L, L]: query i may pool key j <= i
        eye = pos.unsqueeze(1) == pos.unsqueeze(0)  # [L, L]: a padded query pools itself, so no row is all -inf
        allowed = causal.unsqueeze(0) & (mask.unsqueeze(1) | eye.unsqueeze(0))  # [B, L, L]
        if last_only:
            allowed = allowed[:, -1:]  # [B, 1, L]
        att = logits.unsqueeze(2).masked_fill(~allowed.unsqueeze(1), float("-inf"))  # [B, M, Lq, L]
        att = torch.softmax(att, dim=-1)  # [B, M, Lq, L]
        pooled = (att @ h.unsqueeze(1)).transpose(1, 2)  # [B, M, Lq, d] -> [B, Lq, M, d]
        newest = h[:, -1:] if last_only else h  # [B, Lq, d]
        return newest.unsqueeze(2) + self.gate * pooled  # [B, Lq, M, d]


def nearest_interest(interests: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    """interests [B, M, d], vecs [B, d] -> [B, d]: each row's interest with the highest dot product
    with its vector (an argmax: the choice carries no gradient, the chosen interest does). The
    target's interest where a loss needs one vector per example; the top item's in the graph."""
    which = (interests @ vecs.unsqueeze(2).to(interests.dtype)).squeeze(2).argmax(1)  # [B]
    index = which.view(-1, 1, 1).expand(-1, 1, interests.shape[2])  # [B, 1, d]
    return interests.gather(1, index).squeeze(1)  # [B, d]


def best_of_interests(scores: torch.Tensor, interests: int) -> torch.Tensor:
    """Scores [B*M, N] of every interest, rows session-major -> [B, N]: each item's best."""
    return scores if interests == 1 else scores.view(-1, interests, scores.shape[1]).amax(1)


def max_over_interests(sessions: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """sessions [B, d] (one vector) or [B, M, d] (interests), items [N, d] -> scores [B, N]; one
    vector is the plain matmul, the same op as before interests existed."""
    if sessions.dim() == 2:
        return sessions @ items.T  # [B, N]
    return best_of_interests(sessions.flatten(0, 1) @ items.T, sessions.shape[1])  # [B, N]
