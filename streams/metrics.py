"""Prometheus metrics of the worker. Names are a contract with the k8s manifests and
dashboards (issue #4): streamrec_events_total, streamrec_dlq_total, streamrec_batch_size,
streamrec_event_to_feed_seconds, streamrec_model_version_info, streamrec_consumer_lag;
``streamrec_worker_provider_info{provider, device, reason}`` says what scoring runs on and why
(a GPU pod that fell back to the CPU shows it here, not only in its log). The live quality
counters (:mod:`streamrec.streams.live_metrics`), labelled ``version`` (of the model that made
the feed) and ``arm`` (the user's experiment arm, ``all`` without one): ``streamrec_live_events_with_feed_total``,
``streamrec_live_hits_at_10_total``, ``streamrec_live_hits_at_k_total``,
``streamrec_live_reciprocal_rank_total`` (sum of 1/rank over hits in the top K), and
``streamrec_live_events_without_feed_total{arm}``; hit rate@10 = hits_at_10 / events_with_feed.
``streamrec_live_bucket_events_with_feed_total{arm, bucket}`` and
``streamrec_live_bucket_hits_at_10_total{arm, bucket}`` count the same by the user's bucket (one of
20, a hash of the user id: :mod:`streamrec.experiment`), for the experiment report's interval over
groups of users.

Each worker owns its own ``CollectorRegistry`` so several apps can live in one test process
without "duplicated timeseries" errors from the global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from streamrec.serving.providers import ProviderChoice

# event->feed latency buckets: the target is p99 < 250 ms at 1,000 events/s, so resolution is
# finest around 50-500 ms; 30 s catches a Redis outage being retried.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events = Counter("streamrec_events", "events consumed from the events topic", registry=r)
        self.dlq = Counter("streamrec_dlq", "events routed to the dead-letter topic", registry=r)
        self.duplicates = Counter("streamrec_duplicates", "redelivered events not applied twice", registry=r)
        self.held_back = Counter(
            "streamrec_held_back", "events held back above a hole in their partition's offsets", registry=r
        )
        self.batch_size = Histogram("streamrec_batch_size", "events per micro-batch", buckets=BATCH_BUCKETS, registry=r)
        self.users_per_batch = Histogram(
            "streamrec_batch_users", "distinct users encoded per micro-batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "streamrec_event_to_feed_seconds",
            "event broker timestamp -> its feed written to Redis",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.score_seconds = Histogram("streamrec_score_seconds", "runner call per micro-batch", registry=r)
        self.feeds_written = Counter("streamrec_feeds_written", "feeds written (not refused as older)", registry=r)
        self.feeds_stale = Counter("streamrec_feeds_stale", "feed writes refused: a newer feed was there", registry=r)
        self.redis_errors = Counter("streamrec_redis_errors", "failed Redis round trips (retried)", registry=r)
        self.training_examples = Counter("streamrec_training_examples", "examples published for training", registry=r)
        self.model_version = Gauge(
            "streamrec_model_version_info", "the model version being served (value 1)", ["version"], registry=r
        )
        self.provider = Gauge(
            "streamrec_worker_provider_info",
            "the onnxruntime provider scoring runs on, its device and why (value 1)",
            ["provider", "device", "reason"],
            registry=r,
        )
        self.model_swaps = Counter("streamrec_model_swaps", "model versions swapped in", registry=r)
        self.model_load_failures = Counter("streamrec_model_load_failures", "artifacts refused", registry=r)
        self.erasures = Counter("streamrec_erasures", "users erased: session, feed and live state", registry=r)
        self.erased_events = Counter("streamrec_erased_events", "events older than their user's erasure", registry=r)
        self.catalogue_updates = Counter("streamrec_catalogue_updates", "item updates applied", registry=r)
        self.cold_start_failures = Counter(
            "streamrec_cold_start_failures", "catalogue batches whose texts could not be embedded", registry=r
        )
        live = ("version", "arm")
        self.live_events = Counter(
            "streamrec_live_events_with_feed", "events whose user held a feed before them", live, registry=r
        )
        self.live_hits_10 = Counter(
            "streamrec_live_hits_at_10", "events whose item was in the top 10 of that feed", live, registry=r
        )
        self.live_hits_k = Counter(
            "streamrec_live_hits_at_k", "events whose item was anywhere in that feed (top K)", live, registry=r
        )
        self.live_rr = Counter(
            "streamrec_live_reciprocal_rank", "sum of 1/rank of the event's item in that feed", live, registry=r
        )
        bucketed = ("arm", "bucket")
        self.live_bucket_events = Counter(
            "streamrec_live_bucket_events_with_feed", "events with a feed, by the user's bucket", bucketed, registry=r
        )
        self.live_bucket_hits_10 = Counter(
            "streamrec_live_bucket_hits_at_10", "hits in the top 10, by the user's bucket", bucketed, registry=r
        )
        self.live_without_feed = Counter(
            "streamrec_live_events_without_feed", "events whose user held no feed yet", ("arm",), registry=r
        )
        self.lag = Gauge("streamrec_consumer_lag", "events not yet processed", ["partition"], registry=r)
        self.ready = Gauge("streamrec_ready", "1 when /readyz answers 200", registry=r)

    def set_model(self, version: str, choice: ProviderChoice) -> None:
        """The version served and the providers it runs on (a hot swap may change both)."""
        self.model_version.clear()
        self.model_version.labels(version=version).set(1)
        self.set_provider(choice.provider, choice.device, choice.reason)

    def set_provider(self, provider: str, device: str, reason: str) -> None:
        self.provider.clear()
        self.provider.labels(provider=provider, device=device, reason=reason).set(1)

    def set_lag(self, lag_by_partition: dict[int, int]) -> None:
        self.lag.clear()
        for partition, lag in lag_by_partition.items():
            self.lag.labels(partition=str(partition)).set(lag)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
