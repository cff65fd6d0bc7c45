"""Offline fine-tuning from an event log (``streamrec train``).

Every training window is read once per epoch and teaches next-item prediction at every
position at once (the tower is causal, so position i is the session after i events). Early
stopping watches validation NDCG@10 with the same full-ranking protocol as ``streamrec eval``,
and the best epoch's weights are the ones saved.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamrec.contracts.session_rows import left_pad
from streamrec.datasets import Catalogue, EventLog
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.data import Sequences, build_sequences, catalogue_rows, gaps_of, held_out_items
from streamrec.encoder.evaluate import model_score_fn, rank_all, summarize
from streamrec.encoder.interests import nearest_interest
from streamrec.encoder.losses import (
    candidate_log_q,
    next_item_infonce,
    same_target_contrastive,
    seen_pairs,
    session_contrastive,
)
from streamrec.encoder.model import ModelConfig, Recommender
from streamrec.encoder.text import embed_texts
from streamrec.encoder.text_finetune import TunedText, resolve
from streamrec.errors import UserError
from streamrec.settings.encoder import EncoderSettings
from streamrec.text_models import TextModelRef, resolve_setting, search_dirs

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """The torch device of ``settings.device`` (auto|cuda|cpu), for offline training and the
    online trainer alike: ``cuda`` without a usable GPU is a one-line UserError (a CPU torch
    build says so), ``auto`` takes the GPU when torch sees one."""
    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise UserError(f"device=cuda, but torch {torch.__version__} ({build}) sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def budget_minutes(max_minutes: float, n_events: int, device: torch.device) -> float | None:
    """The wall-clock cap of one training run, None for none. ``max_minutes`` 0 means: on a GPU
    none (an epoch takes seconds, so patience ends the run); on CPU 8 minutes per 100k events,
    2 to 18, so ml-100k fits in 10 minutes and a 200k-event log in 20 with the evaluation."""
    if max_minutes > 0:
        return max_minutes
    if device.type == "cuda":
        return None
    return min(18.0, max(2.0, 8.0 * n_events / 100_000))


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where it is native: on a CPU with AVX512-BF16 or AMX it cuts the time of a
    training step (matmuls and the [P, N] logits); without it bf16 is emulated and slower."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if torch.backends.mkldnn.is_available() and _cpu_has_bf16() else None


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


@dataclass
class Windows:
    """Training windows of at most L+1 consecutive events (input = all but last, target = all but first)."""

    items: list[np.ndarray]
    types: list[np.ndarray]
    gaps: list[np.ndarray]


def make_windows(seqs: Sequences, session_length: int, rng: np.random.Generator | None = None) -> Windows:
    """Windows end at the newest training event and step back by L, so every event is a target
    at least once. With ``rng`` the older windows start from a random offset (drawn per user, per
    call): across epochs an event is then predicted from different amounts of context, not
    always from the same few items when it happens to open a window."""
    items, types, gaps = [], [], []
    for u in range(len(seqs.users)):
        part = seqs.train_part(u)
        its, tys, g = seqs.items[u][part], seqs.types[u][part], gaps_of(seqs.ts[u][part])
        ends = list(range(len(its), 1, -session_length))
        if rng is not None and len(its) > session_length + 1:
            # The second window ends 1..L events before the newest: it overlaps the first one by
            # 0..L-1 targets, so no event is skipped, and the rest step back by L from there.
            shift = int(rng.integers(1, session_length + 1))
            ends = [len(its), *range(len(its) - shift, 1, -session_length)]
        for end in ends:
            start = max(0, end - session_length - 1)
            items.append(its[start:end])
            types.append(tys[start:end])
            gaps.append(g[start:end])
    return Windows(items, types, gaps)


def augment(positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of a session (CL4SRec): crop, mask (drop) or reorder -> kept positions."""
    n = len(positions)
    if n < 2:
        return positions
    kind = rng.integers(3)
    if kind == 0:  # crop: a contiguous 60 % run
        m = max(1, int(0.6 * n))
        s = int(rng.integers(0, n - m + 1))
        return positions[s : s + m]
    if kind == 1:  # mask: drop 30 % of the items
        keep = rng.random(n) >= 0.3
        keep[-1] |= not keep.any()
        return positions[keep]
    m = max(2, int(0.3 * n))  # reorder: shuffle a contiguous 30 % run
    s = int(rng.integers(0, n - m + 1))
    out = positions.copy()
    out[s : s + m] = rng.permutation(out[s : s + m])
    return out


class EMA:
    """Exponential moving average of a model's floating-point weights and buffers. The decay
    ramps up from 0 ((1 + t) / (10 + t)), so the average does not remember the initial weights."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for k, v in model.state_dict().items():
            if k in self.state:
                self.state[k].lerp_(v.detach(), 1.0 - d)

    def copy_to(self, model: torch.nn.Module) -> None:
        model.load_state_dict(self.state, strict=False)


def model_config(settings: EncoderSettings, session_length: int, n_items: int, text_dim: int) -> ModelConfig:
    """The model's shape and the settings saved with it (what ``load_model_dir`` rebuilds)."""
    return ModelConfig(
        d=settings.d_model,
        n_layers=settings.n_layers,
        n_heads=settings.n_heads,
        session_length=session_length,
        dropout=settings.dropout,
        n_items=n_items,
        text_dim=text_dim,
        time_gaps=settings.time_gaps,
        id_dropout=settings.id_dropout,
        filter_mix=settings.filter_mix,
        cold_neighbours=settings.cold_neighbours,
        cold_temperature=settings.cold_temperature,
        interests=settings.interests,
    )


class Trainer:
    tuned: TunedText | None = None  # the fine-tuned top of the language model, if any

    def __init__(
        self,
        log_: EventLog,
        catalogue: Catalogue | None,
        settings: EncoderSettings,
        session_length: int,
        device: torch.device,
        cache_dir: Path | None = None,
        progress: bool = True,
        text_encoder: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        """``text_encoder`` replaces the language model (texts -> float32 [N, T]); tests inject a
        cheap one (never fine-tuned). Without it the model named by ``settings.text_model`` is used."""
        self.s = settings
        self.session_length = session_length
        self.device = device
        self.progress = progress
        self.rows = catalogue_rows(log_, catalogue)  # held-out items keep a row: cold, text only
        self.index = {item: i for i, item in enumerate(self.rows)}
        held = held_out_items(log_, settings.hold_out_items, settings.seed)
        if held:
            log_ = dataclasses.replace(log_, events=[ev for ev in log_.events if ev.item_id not in held])
        self.seqs = build_sequences(log_, self.index)
        self.budget_minutes = budget_minutes(settings.max_minutes, len(log_), device)
        n = len(self.rows)
        self.finetune = resolve(settings, device)
        text_emb, self.text_model = self._text_embeddings(catalogue, settings, device, cache_dir, text_encoder)
        self.cfg = model_config(settings, session_length, n, 0 if text_emb is None else int(text_emb.shape[1]))
        torch.manual_seed(settings.seed)
        self.model = Recommender(self.cfg).to(device)
        counts = np.zeros(n)
        for u in range(len(self.seqs.users)):
            np.add.at(counts, self.seqs.items[u][self.seqs.train_part(u)], 1.0)
        with torch.no_grad():
            if text_emb is not None:
                self.model.items.text_emb.copy_(torch.from_numpy(text_emb))
            self.model.items.warm.copy_(torch.from_numpy(counts > 0))
        self.pop = torch.from_numpy(counts / max(counts.sum(), 1.0)).float().to(device)  # [N]
        self.windows = make_windows(self.seqs, session_length)
        if not self.windows.items:
            raise UserError("no user has two or more training events: nothing to learn from")
        self.val_users = [u for u in range(len(self.seqs.users)) if len(self.seqs.items[u]) >= 3]
        self.full_softmax = n <= settings.full_softmax_items
        # Items with no training event (items-file rows without clicks, held-out items) are never a
        # target, so as negatives they would only ever be pushed down, and with them the text-only
        # vectors cold start ranks by: they stay out of the softmax (+inf in the log_q slot).
        self.unseen = torch.where(torch.from_numpy(counts > 0), 0.0, float("inf")).to(device)  # [N]
        self.any_unseen = bool((counts == 0).any())
        self.amp_dtype = autocast_dtype(settings.precision, device)

    def _text_embeddings(
        self,
        catalogue: Catalogue | None,
        s: EncoderSettings,
        device: torch.device,
        cache_dir: Path | None,
        text_encoder: Callable[[list[str]], np.ndarray] | None,
    ) -> tuple[np.ndarray | None, TextModelRef | str | None]:
        """Text-model embeddings [N, T] of the rows and the text model's ref ('injected' for a
        test's encoder); (None, None) for an ID-only model: no catalogue, text model 'none', or
        no item with text (the language model is then not loaded at all)."""
        if catalogue is None:
            return None, None
        cat_index = catalogue.index()
        texts = [catalogue.text_of(cat_index[r]) if r in cat_index else "" for r in self.rows]
        if not any(t.strip() for t in texts):
            log.info("no item has text: training an ID-only model (no text tower)")
            return None, None
        if text_encoder is not None:
            if self.finetune is not None:
                log.info("an injected text encoder is not fine-tuned (encoder.text_finetune ignored)")
                self.finetune = None
            emb = np.asarray(text_encoder(texts), dtype=np.float32)
            emb[[not t.strip() for t in texts]] = 0.0  # rows without text: no text part, as TextModel does
            return emb, "injected"
        resolved = resolve_setting(s.text_model, search_dirs(s.text_model_dir))
        if resolved is None:
            return None, None
        ref, directory = resolved
        if self.finetune is not None:
            self.tuned = TunedText.build(directory, texts, self.finetune, s.text_max_tokens, device, self.progress)
            return self.tuned.embed_all().cpu().numpy(), ref
        emb = embed_texts(
            texts,
            directory,
            ref.sha256,
            s.text_max_tokens,
            device=str(device),
            cache_dir=cache_dir,
            progress=self.progress,
        )
        return emb, ref

    # -- one optimisation step ------------------------------------------------------------
    def _step(self, batch: list[int], rng: np.random.Generator, gen: torch.Generator) -> torch.Tensor:
        s, dev = self.s, self.device
        w = self.windows
        # Padded to the batch's longest window, not to L: positions count by recency (newest last),
        # so a shorter left-padded input is the same session, and short sessions cost less.
        L = min(self.session_length, max(len(w.items[i]) - 1 for i in batch))
        hist, hmask = left_pad([w.items[i][:-1] for i in batch], L)  # [B, L]
        tgt, _ = left_pad([w.items[i][1:] for i in batch], L)  # [B, L], same mask as hist
        tys, _ = left_pad([w.types[i][:-1] for i in batch], L)  # [B, L]
        gaps = left_pad([w.gaps[i][:-1] for i in batch], L, np.float32)[0] if self.cfg.time_gaps else None
        vecs, hist_rows, target_rows, log_q = self._candidates(torch.from_numpy(hist), hmask, tgt, gen)
        hmask_d = torch.from_numpy(hmask).to(dev)
        types_d = torch.from_numpy(tys).to(dev)
        gaps_d = torch.from_numpy(gaps).to(dev) if gaps is not None else None
        sess = self.model.session.forward_all(vecs[hist_rows], types_d, hmask_d, gaps_d)[hmask_d]  # [P, d] or [P, M, d]
        exclude = None
        if s.mask_seen:
            # Serving never shows an item already in the session, so training does not spend the
            # softmax on pushing those down; a target that repeats an earlier item stays a target.
            exclude = seen_pairs(hist_rows, hmask_d, target_rows)  # ([E], [E]) (position, candidate)
        loss = next_item_infonce(sess, target_rows, vecs, log_q, s.temperature, exclude)
        if s.supcon_weight > 0:
            # Anchors: each window's newest position (the last row of each session in ``sess``).
            anchors = torch.from_numpy(np.cumsum(hmask.sum(axis=1)) - 1).to(dev)  # [B]
            own = sess if sess.dim() == 2 else nearest_interest(sess, vecs[target_rows])  # [P, d]: targets' interests
            loss = loss + s.supcon_weight * same_target_contrastive(own, target_rows, anchors, s.temperature)
        if s.cl_weight > 0 and len(batch) > 1:
            loss = loss + s.cl_weight * self._augmented_views(vecs, hist_rows, hmask, types_d, gaps_d, rng)
        return loss

    def _candidates(
        self, hist_t: torch.Tensor, hmask: np.ndarray, tgt: np.ndarray, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The softmax's candidates -> (their vectors [C, d], the history as candidate rows [B, L],
        each position's target row [P], log_q [C] or None)."""
        s, dev = self.s, self.device
        hmask_t, tgt_t = torch.from_numpy(hmask), torch.from_numpy(tgt)
        if self.full_softmax:
            # Every item is a candidate, so the loss is the exact softmax over the catalogue that
            # evaluation ranks against, and no sampling correction is needed.
            log_q = self.unseen if self.any_unseen else None
            vecs = self.model.items(None, self._text(None))  # [N, d]
            return vecs, hist_t.to(dev), tgt_t[hmask_t].to(dev), log_q  # padded slots -> row 0
        neg = torch.randint(self.cfg.n_items, (s.n_negatives,), generator=gen)  # [M]
        n_h = int(hmask.sum())
        all_idx = torch.cat([hist_t[hmask_t], tgt_t[hmask_t], neg])  # [2*n_h + M]
        uniq, inv = torch.unique(all_idx, return_inverse=True)  # [U], [2*n_h + M]
        uniq = uniq.to(dev)
        hist_rows = torch.zeros_like(hist_t)  # [B, L]
        hist_rows[hmask_t] = inv[:n_h]
        log_q = candidate_log_q(self.pop[uniq], 2 * n_h, s.n_negatives, self.cfg.n_items) if s.logq else None
        if self.any_unseen:
            log_q = self.unseen[uniq] if log_q is None else log_q + self.unseen[uniq]
        return self.model.items(uniq, self._text(uniq)), hist_rows.to(dev), inv[n_h : 2 * n_h].to(dev), log_q

    @property
    def net(self) -> torch.nn.Module:
        """Everything the optimiser trains, EMA averages and the best epoch keeps."""
        return self.model if self.tuned is None else torch.nn.ModuleDict({"model": self.model, "text": self.tuned})

    def _text(self, idx: torch.Tensor | None) -> torch.Tensor | None:
        """Fine-tuned text embeddings of rows ``idx`` (all when None) with gradients, [C, T];
        None when the language model is frozen (the item tower reads its cached ``text_emb``)."""
        return None if self.tuned is None else self.tuned(idx)

    def _sync_text_emb(self) -> None:
        """The item tower's cached text embeddings from the tuned layers as they are now, so
        validation, the best epoch's weights and the saved item matrix use them."""
        if self.tuned is not None:
            self.model.items.text_emb.copy_(self.tuned.embed_all())

    def _augmented_views(
        self,
        vecs: torch.Tensor,
        hist_rows: torch.Tensor,
        hmask: np.ndarray,
        types_d: torch.Tensor,
        gaps_d: torch.Tensor | None,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """The self-supervised term (CL4SRec): two augmented views of each session, contrasted."""
        dev, L = self.device, hmask.shape[1]
        views = []
        for _ in range(2):
            pos = [augment(np.flatnonzero(row), rng) for row in hmask]
            p, pm = left_pad(pos, L)  # [B, L] positions into the padded rows
            p_t, pm_t = torch.from_numpy(p).to(dev), torch.from_numpy(pm).to(dev)
            rows_v = torch.gather(hist_rows, 1, p_t)  # [B, L]
            types_v = torch.gather(types_d, 1, p_t) * pm_t  # [B, L]
            gaps_v = torch.gather(gaps_d, 1, p_t) if gaps_d is not None else None
            view = self.model.session(vecs[rows_v], types_v, pm_t, gaps_v)  # [B, d] or [B, M, d]
            # Interests: the views must agree head by head (a unit vector of their concatenation).
            views.append(view if view.dim() == 2 else view.flatten(1) / view.shape[1] ** 0.5)  # [B, d or M*d]
        return session_contrastive(views[0], views[1], self.s.temperature)

    # -- validation -------------------------------------------------------------------------
    def validate(self) -> dict:
        self.model.eval()
        sq = self.seqs
        hist = [sq.items[u][:-2] for u in self.val_users]
        types = [sq.types[u][:-2] for u in self.val_users]
        gaps = [gaps_of(sq.ts[u][:-2]) for u in self.val_users] if self.cfg.time_gaps else None
        targets = np.array([sq.items[u][-2] for u in self.val_users], dtype=np.int64)
        with torch.no_grad():
            matrix = self.model.items()  # [N, d]
        fn = model_score_fn(self.model, matrix, hist, types, gaps, self.session_length, self.device)
        ranks, tops = rank_all(fn, hist, targets, keep_seen=False)
        return summarize(ranks, tops, self.cfg.n_items, None)

    def fit(self) -> TrainedModel:
        """Train until validation NDCG@10 stops improving; returns the best epoch's model (on CPU)."""
        # Same seed -> same weights: CPU scatter-adds (index backward) otherwise sum in thread order.
        # Every new tensor here is written before it is read, so deterministic mode's NaN-filling of
        # fresh memory (a fill_ per allocation, a visible share of a step in torch.profiler) buys nothing.
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        was_filling = torch.utils.deterministic.fill_uninitialized_memory
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False
        try:
            return self._fit()
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
            torch.utils.deterministic.fill_uninitialized_memory = was_filling

    def _fit(self) -> TrainedModel:
        from tqdm import tqdm

        s = self.s
        groups: list[dict] = [{"params": list(self.model.parameters())}]
        if self.tuned is not None and self.finetune is not None:
            # The language model learns slower than the towers on top: its weights start trained.
            groups.append({"params": [p for p in self.tuned.parameters() if p.requires_grad], "lr": self.finetune.lr})
        opt = torch.optim.AdamW(groups, lr=s.lr, weight_decay=s.weight_decay)
        rng = np.random.default_rng(s.seed)
        gen = torch.Generator().manual_seed(s.seed)
        best, best_state, best_epoch, bad, stale = -1.0, None, 0, 0, 0
        best_opt: dict | None = None
        history = []
        # Exponential moving average of the weights (Polyak averaging): validated and saved in
        # place of the raw weights, it smooths out the step-to-step noise of small-batch training.
        ema = EMA(self.net, s.ema_decay) if s.ema_decay > 0 else None
        amp = self.amp_dtype is not None
        t0 = time.monotonic()
        for epoch in range(1, s.epochs + 1):
            self.net.train()
            if s.shift_windows and epoch > 1:
                self.windows = make_windows(self.seqs, self.session_length, rng)
            order = rng.permutation(len(self.windows.items))
            batches = [order[i : i + s.batch_size].tolist() for i in range(0, len(order), s.batch_size)]
            total = 0.0
            bar = tqdm(batches, desc=f"epoch {epoch}/{s.epochs}", unit="batch", disable=not self.progress, leave=False)
            for batch in bar:
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=amp):
                    loss = self._step(batch, rng, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
                opt.step()
                if ema is not None:
                    ema.update(self.net)
                total += float(loss.detach())
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            live = None
            if ema is not None:
                live = copy.deepcopy(self.net.state_dict())
                ema.copy_to(self.net)
            self._sync_text_emb()
            val = self.validate() if self.val_users else {"ndcg@10": 0.0, "hr@10": 0.0}
            lr = opt.param_groups[0]["lr"]
            history.append({"epoch": epoch, "loss": total / max(len(batches), 1), "lr": lr, **val})
            log.info(
                "epoch %d loss %.4f val ndcg@10 %.4f hr@10 %.4f",
                epoch,
                history[-1]["loss"],
                val["ndcg@10"],
                val["hr@10"],
            )
            if self.progress:
                print(
                    f"epoch {epoch}: loss {history[-1]['loss']:.4f}  val ndcg@10 {val['ndcg@10']:.4f}  "
                    f"hr@10 {val['hr@10']:.4f}  ({time.monotonic() - t0:.0f}s)",
                    flush=True,
                )
            if val["ndcg@10"] > best:
                best, best_epoch, bad, stale = val["ndcg@10"], epoch, 0, 0
                best_state = copy.deepcopy(self.net.state_dict())
                best_opt = copy.deepcopy(opt.state_dict()) if s.lr_decay < 1 else None
            else:
                bad, stale = bad + 1, stale + 1
            if live is not None:
                self.net.load_state_dict(live)  # back to the raw weights the optimiser holds
            if bad >= s.patience:
                break
            if stale >= s.lr_patience and s.lr_decay < 1 and best_state is not None:
                # A plateau: the epochs since the best one only overfit (small logs) or wander (large
                # ones), so they are dropped and the best weights go on at a smaller step.
                self.net.load_state_dict(best_state)
                if ema is not None:
                    ema = EMA(self.net, s.ema_decay)
                lrs = [g["lr"] * s.lr_decay for g in opt.param_groups]
                opt.load_state_dict(best_opt)
                for group, lr in zip(opt.param_groups, lrs, strict=True):
                    group["lr"] = lr
                stale = 0
                log.info("validation plateau: back to epoch %d at lr %.2g", best_epoch, lrs[0])
            if self.budget_minutes is not None and time.monotonic() - t0 > 60 * self.budget_minutes:
                log.warning(
                    "stopping after %d epochs: the %.1f-minute training budget is spent", epoch, self.budget_minutes
                )
                break
        assert best_state is not None
        self.net.load_state_dict(best_state)
        self.net.eval()
        best_val = next(h for h in history if h["epoch"] == best_epoch)
        metrics = {
            "best_epoch": best_epoch,
            "val": {k: v for k, v in best_val.items() if k not in ("epoch", "loss", "lr")},
            "epochs": history,
            "train_seconds": round(time.monotonic() - t0, 1),
            "users": len(self.seqs.users),
            "items": self.cfg.n_items,
            "warm_items": int(self.model.items.warm.sum()),
            "windows": len(self.windows.items),
        }
        text_model = self.text_model.as_dict() if isinstance(self.text_model, TextModelRef) else self.text_model
        config = {"text_model": text_model, "train": s.model_dump(), "session_length": self.session_length}
        layers = None
        if self.tuned is not None and self.finetune is not None:
            layers = self.tuned.layer_state()
            config["text_finetune"] = self.tuned.describe(self.finetune)
            metrics["text_finetune"] = self.finetune.describe()
        return TrainedModel(
            model=self.model.cpu(), item_ids=self.rows, config=config, metrics=metrics, text_layers=layers
        )
