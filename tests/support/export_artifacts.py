"""A tiny stand-in session tower and artifacts built from it, for the serving and export tests.

The stand-in lives here only (never in product code): a mean of the session's item vectors
plus a type embedding, through a linear layer. It honours the SessionTower contract (shapes,
left padding, mask) and exports in well under a second.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamrec.export.exporter import ExportResult, export_model
from streamrec.serving.registry import LocalRegistry

D, N_ITEMS, K, L = 16, 300, 10, 8


class MeanTower(nn.Module):
    """item_vecs [B,L,d], types [B,L], mask [B,L] -> sign * proj(mean of real items + type) [B,d]."""

    def __init__(self, d: int = D, sign: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.type_emb = nn.Embedding(5, d)
        nn.init.normal_(self.type_emb.weight, std=0.01)
        self.proj = nn.Linear(d, d)
        with torch.no_grad():
            self.proj.weight.copy_(torch.eye(d) + 0.01 * torch.randn(d, d))
            self.proj.bias.zero_()
        self.sign = sign

    def forward(self, item_vecs: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(item_vecs.dtype)  # [B, L, 1]
        h = ((item_vecs + self.type_emb(types)) * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, d]
        return self.sign * self.proj(h)  # [B, d]


class NaNTower(MeanTower):
    """A broken tower: NaN for every left-padded session (what a causal mask without a self-key does)."""

    def forward(self, item_vecs: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = super().forward(item_vecs, types, mask)
        padded = (~mask).any(dim=1, keepdim=True)  # [B, 1]
        return torch.where(padded, torch.full_like(out, float("nan")), out)


def item_ids(n: int = N_ITEMS) -> list[str]:
    return [f"item-{i}" for i in range(n)]


def item_matrix(n: int = N_ITEMS, d: int = D, seed: int = 0) -> np.ndarray:
    m = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def build(registry: LocalRegistry, tower: nn.Module | None = None, **kw: object) -> ExportResult:
    return export_model(
        tower or MeanTower(),
        item_ids(),
        item_matrix(),
        registry,
        k=K,
        session_length=L,
        **kw,  # type: ignore[arg-type]
    )
