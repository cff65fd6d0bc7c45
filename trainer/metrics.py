"""The online trainer's Prometheus metrics (its status server serves them on ``trainer.web_port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FRESHNESS_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600)


class TrainerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.updates = Counter("streamrec_trainer_updates", "gradient updates", registry=r)
        self.examples = Counter("streamrec_trainer_examples", "training examples ingested", registry=r)
        self.evicted_untrained = Counter(
            "streamrec_trainer_examples_evicted_untrained",
            "examples that left the full replay buffer before any update drew them",
            registry=r,
        )
        self.erased_examples = Counter(
            "streamrec_trainer_erased_examples", "examples of erased users dropped or ignored", registry=r
        )
        self.loss = Gauge("streamrec_trainer_loss", "loss of the last update", registry=r)
        self.promotions = Counter("streamrec_trainer_promotions", "candidates promoted", registry=r)
        self.adoptions = Counter(
            "streamrec_trainer_adoptions", "announced versions of a retrain continued from", registry=r
        )
        self.canary_rollouts = Counter(
            "streamrec_trainer_canary_rollouts", "canaries the live gate rolled out to every user", registry=r
        )
        self.canary_rollbacks = Counter(
            "streamrec_trainer_canary_rollbacks", "canaries the live gate rolled back", registry=r
        )
        self.live = Gauge(
            "streamrec_trainer_live_hit_rate",
            "last live gate: hit@10 of the canary and the stable",
            ["version"],
            registry=r,
        )
        self.rejections = Counter("streamrec_trainer_rejections", "candidates rejected by the gate", registry=r)
        self.candidate = Gauge("streamrec_trainer_candidate_metric", "last gate: candidate", ["metric"], registry=r)
        self.served = Gauge("streamrec_trainer_served_metric", "last gate: served model", ["metric"], registry=r)
        self.model_age = Gauge(
            "streamrec_model_age_seconds", "now - newest example the served model learned from", registry=r
        )
        self.items = Gauge("streamrec_trainer_items", "rows of the trainer's item table", registry=r)
        self.new_items = Gauge(
            "streamrec_trainer_new_items", "items added to the table since the offline model", registry=r
        )
        self.freshness = Histogram(
            "streamrec_trainer_freshness_seconds",
            "example entered the training topic -> first announced version trained on it",
            buckets=FRESHNESS_BUCKETS,
            registry=r,
        )
