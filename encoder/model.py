"""The two towers: items (text + id) and sessions (a small causal transformer).

Both emit L2-normalised vectors in one d-dimensional space, so a score is a plain dot product
``session_vec @ item_matrix.T`` (a cosine) and the serving side needs nothing but a matmul
and a top-K. Layout follows nanoGPT: one config dataclass, shapes in comments on every op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from streamrec.contracts.events import EVENT_TYPES
from streamrec.encoder.cold_vectors import borrow_for_untrained
from streamrec.encoder.interests import InterestPooling

N_TYPES = len(EVENT_TYPES) + 1  # index 0 = padding, then EVENT_TYPES in order (+1)
N_GAP_BUCKETS = 32  # log2 buckets of seconds since the previous event: 2^31 s covers 68 years


@dataclass
class ModelConfig:
    d: int = 128  # embedding width shared by item and session vectors
    n_layers: int = 2  # session transformer blocks
    n_heads: int = 2  # attention heads (d % n_heads == 0)
    session_length: int = 50  # L: newest items a session keeps; also the number of position embeddings
    dropout: float = 0.1  # dropout inside the session tower while training
    n_items: int = 0  # rows of the item table (catalogue size at training time)
    text_dim: int = 0  # T: width of the text model's pooled output; 0 = no text (id embeddings only)
    time_gaps: bool = False  # add a log-bucketed "seconds since previous event" embedding
    id_dropout: float = 0.25  # share of items whose id embedding is hidden per step: teaches text-only vectors
    filter_mix: float = 0.0  # share of token mixing done by a learned causal filter (0 = attention only)
    cold_neighbours: int = 10  # an untrained row borrows its k text-nearest trained rows' vectors (0 = text only)
    cold_temperature: float = 0.05  # softmax temperature over those neighbours' text cosines
    interests: int = 1  # M: session vectors (streamrec.encoder.interests); 1 = the newest position's output

    def __post_init__(self) -> None:
        if self.d % self.n_heads:
            raise ValueError(f"d={self.d} is not divisible by n_heads={self.n_heads}")
        if self.interests < 1:
            raise ValueError(f"interests={self.interests} < 1")


def gap_buckets(gaps: torch.Tensor) -> torch.Tensor:
    """Seconds since the previous event [B, L] float -> bucket ids [B, L] int64 (0 = no gap)."""
    return torch.clamp(torch.floor(torch.log2(1.0 + gaps.clamp(min=0.0))), 0, N_GAP_BUCKETS - 1).long()


class TextProjection(nn.Module):
    """Text-model embedding [N, T] -> item vector part [N, d]. Kept separate so it can be exported
    alone (the projection inside ``text.onnx``) and new items get a vector from their text in seconds."""

    def __init__(self, text_dim: int, d: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(text_dim, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.fc1(text))  # [N, 2d]
        return self.fc2(h)  # [N, d]


class ItemTower(nn.Module):
    """item vector = normalize(text_proj(text_emb) + warm * id_emb).

    The id embedding only adds what the text cannot say about an item seen in training; an item
    never seen (cold, ``warm`` False or appended after training) keeps its text vector alone.
    Hiding a random share of id embeddings while training (``id_dropout``) keeps those text-only
    vectors in the same space as the warm ones. Outside training, the whole table's untrained rows
    take the vectors of their text-nearest trained rows instead (``cold_neighbours``,
    :mod:`streamrec.encoder.cold_vectors`): every item matrix (validation, gate, export, eval) is
    this call, so they all rank cold items the same way.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.id_emb = nn.Embedding(cfg.n_items, cfg.d)
        nn.init.normal_(self.id_emb.weight, std=0.1 if cfg.text_dim else 1.0 / math.sqrt(cfg.d))
        self.text_proj = TextProjection(cfg.text_dim, cfg.d) if cfg.text_dim else None
        # Text-model embeddings of the catalogue (computed once per catalogue version; with a
        # fine-tuned language model, those of its best epoch).
        self.register_buffer("text_emb", torch.zeros(cfg.n_items, cfg.text_dim))  # [N, T]
        self.register_buffer("warm", torch.ones(cfg.n_items, dtype=torch.bool))  # [N]

    def forward(self, idx: torch.Tensor | None = None, text: torch.Tensor | None = None) -> torch.Tensor:
        """Vectors of items ``idx`` (any shape [...]) or of the whole table when None -> [..., d].
        ``text`` [..., T]: those rows' text-model embeddings in place of ``text_emb`` (the trainer's
        fine-tuned language model computes them per step, with gradients)."""
        whole = idx is None
        if whole:
            idx = torch.arange(self.cfg.n_items, device=self.id_emb.weight.device)  # [N]
        keep = self.warm[idx].unsqueeze(-1).to(self.id_emb.weight.dtype)  # [..., 1]
        if self.training and self.text_proj is not None and self.cfg.id_dropout > 0:
            # One draw per catalogue row so an item has the same vector everywhere in a batch.
            drop = torch.rand(self.cfg.n_items, device=idx.device) < self.cfg.id_dropout  # [N]
            keep = keep * (~drop[idx]).unsqueeze(-1).to(keep.dtype)  # [..., 1]
        v = self.id_emb(idx) * keep  # [..., d]
        if self.text_proj is not None:
            v = v + self.text_proj(self.text_emb[idx] if text is None else text)  # [..., d]
        v = F.normalize(v, dim=-1)  # [..., d]
        if whole and not self.training and self.text_proj is not None and self.cfg.cold_neighbours:
            keys = self.text_emb if text is None else text  # [N, T]
            v = borrow_for_untrained(v, keys, self.warm, self.cfg.cold_neighbours, self.cfg.cold_temperature)
        return v


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.scale = 1.0 / math.sqrt(cfg.d // cfg.n_heads)  # a Python constant: exports without tracer warnings
        self.qkv = nn.Linear(cfg.d, 3 * cfg.d)
        self.proj = nn.Linear(cfg.d, cfg.d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """[B, L, d] -> [B, L, d], or [B, 1, d] for the newest query alone with ``last_only``
        (serving needs only the session vector: the last layer then skips L-1 queries, ~40% of
        the tower's FLOPs at 2 layers)."""
        B, L, d = x.shape
        w, b = self.qkv.weight, self.qkv.bias  # [3d, d], [3d]
        if last_only:
            q = F.linear(x[:, -1:], w[:d], b[:d])  # [B, 1, d]
            k, v = F.linear(x, w[d:], b[d:]).split(d, dim=2)  # 2 x [B, L, d]
            allowed = allowed[..., -1:, :]  # [B, 1, 1, L]
        else:
            q, k, v = self.qkv(x).split(d, dim=2)  # 3 x [B, L, d]
        Lq = q.shape[1]
        q = q.view(B, Lq, self.n_heads, d // self.n_heads).transpose(1, 2)  # [B, H, Lq, d/H]
        k = k.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2)  # [B, H, L, d/H]
        v = v.view(B, L, self.n_heads, d // self.n_heads).transpose(1, 2)  # [B, H, L, d/H]
        att = (q @ k.transpose(-2, -1)) * self.scale  # [B, H, Lq, L]
        att = att.masked_fill(~allowed, float("-inf"))  # [B, H, Lq, L]; diagonal always allowed -> no NaN
        att = self.drop(F.softmax(att, dim=-1))  # [B, H, Lq, L]
        y = (att @ v).transpose(1, 2).reshape(B, Lq, d)  # [B, Lq, d]
        return self.drop(self.proj(y))  # [B, Lq, d]


class CausalFilter(nn.Module):
    """A learned causal filter over the sequence, one kernel per channel:
    ``y[t, c] = sum_{k <= t} h[k, c] * x[t - k, c]``, i.e. a lower-triangular Toeplitz [L, L]
    mixing per channel, applied as one matmul.

    FMLP-Rec (Zhou et al., WWW 2022; github.com/Woeee/FMLP-Rec, ``FilterLayer``) multiplies the
    sequence's FFT by a learned complex filter, which is a circular (non-causal) convolution
    along the sequence, and FFT does not go through the legacy ONNX exporter. The same learned
    convolution written in the time domain, with lags >= 0 only, is causal (position t sees no
    later item, so every position is a training target as in the attention tower), exports as a
    gather + matmul, and lags count by recency the way the position embeddings do. BSARec
    (Shin et al., AAAI 2024; github.com/yehjin-shin/BSARec) blends such a filter with attention
    (``alpha * filter + (1 - alpha) * attention``): that is ``ModelConfig.filter_mix``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(cfg.session_length, cfg.d) * 0.02)  # [L, d] by lag, as FMLP-Rec inits
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """[B, L, d], mask [B, L] -> [B, L, d] (or [B, 1, d], the newest position)."""
        L = x.shape[1]
        pos = torch.arange(L, device=x.device)  # [L]
        lag = pos.unsqueeze(1) - pos.unsqueeze(0)  # [L, L]: query i, key j -> i - j
        if last_only:
            lag = lag[-1:]  # [1, L]
        toeplitz = self.kernel[lag.clamp(0, self.kernel.shape[0] - 1)]  # [Lq, L, d]
        toeplitz = toeplitz * (lag >= 0).unsqueeze(-1).to(x.dtype)  # [Lq, L, d]; no future keys
        x = x * mask.unsqueeze(-1).to(x.dtype)  # [B, L, d]; padded slots carry nothing
        y = torch.einsum("ijc,bjc->bic", toeplitz, x)  # [B, Lq, d]
        return self.drop(y)  # [B, Lq, d]


class Block(nn.Module):
    """Pre-norm transformer block; with ``filter_mix`` > 0 its token mixing is
    ``(1 - filter_mix) * attention + filter_mix * causal filter`` (1 = filter only, no attention)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.mix = cfg.filter_mix
        self.ln1 = nn.LayerNorm(cfg.d)
        self.attn = CausalSelfAttention(cfg) if cfg.filter_mix < 1.0 else None
        self.filter = CausalFilter(cfg) if cfg.filter_mix > 0.0 else None
        self.ln2 = nn.LayerNorm(cfg.d)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d, 4 * cfg.d), nn.GELU(), nn.Linear(4 * cfg.d, cfg.d), nn.Dropout(cfg.dropout)
        )

    def forward(
        self, x: torch.Tensor, allowed: torch.Tensor, mask: torch.Tensor, last_only: bool = False
    ) -> torch.Tensor:
        """[B, L, d] -> [B, L, d] (or [B, 1, d], the newest position, with ``last_only``)."""
        z = self.ln1(x)  # [B, L, d]
        if self.filter is None:
            h = self.attn(z, allowed, last_only)  # [B, L or 1, d]
        elif self.attn is None:
            h = self.filter(z, mask, last_only)  # [B, L or 1, d]
        else:
            h = (1.0 - self.mix) * self.attn(z, allowed, last_only) + self.mix * self.filter(z, mask, last_only)
        x = (x[:, -1:] if last_only else x) + h  # [B, L or 1, d]
        return x + self.mlp(self.ln2(x))  # [B, L or 1, d]


class SessionTower(nn.Module):
    """Causal transformer over a user's newest L items; the newest position's output is the
    session vector. Inputs are left-padded (newest item at position L-1), so positions are
    embedded by recency (0 = newest): a session means the same whatever L it is padded to."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pos_emb = nn.Embedding(cfg.session_length, cfg.d)  # by recency, 0 = newest
        self.type_emb = nn.Embedding(N_TYPES, cfg.d)
        self.gap_emb = nn.Embedding(N_GAP_BUCKETS, cfg.d) if cfg.time_gaps else None
        for emb in (self.pos_emb, self.type_emb, self.gap_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.1)
        self.in_scale = math.sqrt(cfg.d)  # unit-norm item vectors -> ~unit-size components
        self.in_ln = nn.LayerNorm(cfg.d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.d)
        self.out = nn.Linear(cfg.d, cfg.d)
        self.interest = InterestPooling(cfg.d, cfg.interests) if cfg.interests > 1 else None  # last: M=1 unchanged

    def forward_all(
        self,
        item_vecs: torch.Tensor,
        types: torch.Tensor,
        mask: torch.Tensor,
        gaps: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Session vector after every prefix: [B, L, d] (position i sees positions <= i only);
        with ``last_only`` just the newest one, [B, 1, d], computed without the other queries of
        the last layer. With ``interests`` M > 1, the M interests after every prefix, [B, L, M, d]
        ([B, 1, M, d]): they pool every position's output, so the last layer runs all queries."""
        L = item_vecs.shape[1]  # item_vecs [B, L, d]
        recency = torch.arange(L - 1, -1, -1, device=item_vecs.device)  # [L]: L-1 ... 0
        recency = recency.clamp(max=self.cfg.session_length - 1)  # [L]: longer inputs share the oldest slot
        x = item_vecs * self.in_scale + self.pos_emb(recency).unsqueeze(0) + self.type_emb(types)  # [B, L, d]
        if self.gap_emb is not None and gaps is not None:
            x = x + self.gap_emb(gap_buckets(gaps))  # [B, L, d]
        x = x * mask.unsqueeze(-1).to(x.dtype)  # [B, L, d]; padded slots carry nothing
        x = self.drop(self.in_ln(x))  # [B, L, d]
        pos = torch.arange(L, device=item_vecs.device)  # [L]
        causal = pos.unsqueeze(1) >= pos.unsqueeze(0)  # [L, L]: query i may see key j <= i
        eye = pos.unsqueeze(1) == pos.unsqueeze(0)  # [L, L]
        # A padded query (all its keys padded) attends to itself, so no row is all -inf.
        allowed = causal.unsqueeze(0) & (mask.unsqueeze(1) | eye.unsqueeze(0))  # [B, L, L]
        allowed = allowed.unsqueeze(1)  # [B, 1, L, L], broadcast over heads
        skip = last_only and self.interest is None  # the last layer may compute the newest query alone
        for i, block in enumerate(self.blocks):
            x = block(x, allowed, mask, skip and i == len(self.blocks) - 1)  # [B, L, d] ([B, 1, d] last)
        z = self.out(self.ln_f(x))  # [B, L or 1, d]
        if self.interest is not None:
            z = self.interest(z, mask, last_only)  # [B, L or 1, M, d]
        return F.normalize(z, dim=-1)  # [B, L or 1, d] or [B, L or 1, M, d]

    def forward(
        self,
        item_vecs: torch.Tensor,
        types: torch.Tensor,
        mask: torch.Tensor,
        gaps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """item_vecs [B, L, d] float32, types [B, L] int64, mask [B, L] bool -> session vec [B, d]
        (interests [B, M, d] with M > 1)."""
        return self.forward_all(item_vecs, types, mask, gaps, last_only=True)[:, -1]  # [B, d] or [B, M, d]


class Recommender(nn.Module):
    """Both towers, trained together."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.items = ItemTower(cfg)
        self.session = SessionTower(cfg)

    def encode_sessions(
        self,
        item_idx: torch.Tensor,
        types: torch.Tensor,
        mask: torch.Tensor,
        item_matrix: torch.Tensor | None = None,
        gaps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Catalogue rows [B, L] int64 -> session vectors [B, d] ([B, M, d] with M > 1 interests)."""
        vecs = self.items(item_idx) if item_matrix is None else item_matrix[item_idx]  # [B, L, d]
        return self.session(vecs, types, mask, gaps)  # [B, d]
