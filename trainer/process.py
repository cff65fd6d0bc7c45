"""The online trainer process (``streamrec trainer``): consume training batches, update,
gate, export, announce.

Delivery: training-topic offsets are committed only after a promotion, and only up to the oldest
example the promoted version has not trained on (the held-back window, buffered rows no update
has drawn yet: :mod:`streamrec.trainer.offsets`), so a crash or restart re-reads every example
the newest served version has not learned from (at-least-once; an example may be learned twice
across a crash, which an SGD learner tolerates). State that
survives restarts: the lineage of promoted model directories under
``<data_dir>/trainer/models/<version>`` plus the registry; a restart resumes from the newest
promoted version that has a lineage entry, else from ``--init-model``.

Retrains: the trainer follows ``streamrec.models`` too and continues from a newer version it did
not produce, when that version carries its model directory (``streamrec retrain``'s do), keeping
the examples it holds (:mod:`streamrec.trainer.adopt`).

Catalogue: the trainer follows ``streamrec.items`` too (:mod:`streamrec.trainer.items`); items
its table lacks join it as text-only rows, so every promoted version carries them.

Erasures: it follows ``streamrec.erasures`` too, and drops erased users' examples (:mod:`streamrec.trainer.erasures`).

Canary (``trainer.canary_share`` > 0, the default): a candidate that passes the held-back gate is
first a canary, and updates pause while the live gate judges it (:mod:`streamrec.trainer.live_gate`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from streamrec.config import Settings
from streamrec.contracts.announcement import Canary, as_canary, parse_announcement, send_announcement
from streamrec.contracts.training_batch import TrainingBatchError, decode_batch
from streamrec.encoder.artifact import TrainedModel, load_model_dir
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.trainer import pick_device
from streamrec.errors import UserError
from streamrec.follow import FollowerThread
from streamrec.kafka import make_producer, security_kwargs
from streamrec.serving.artifact import ArtifactError
from streamrec.text_models import search_dirs
from streamrec.trainer.adopt import adoptable, fetch_trainable, rebase
from streamrec.trainer.erasures import ErasureLedger
from streamrec.trainer.items import CatalogueSync, ItemsReader, TextEncoder, artifact_text_encoder
from streamrec.trainer.lineage import export_candidate, record_rollback, resume_from
from streamrec.trainer.live_gate import LiveGate
from streamrec.trainer.metrics import TrainerMetrics
from streamrec.trainer.offsets import TrainedOffsets, training_consumer

log = logging.getLogger("streamrec.trainer")


@dataclass
class Served:
    version: str
    newest_learned: float | None = None


class TrainerProcess:
    def __init__(
        self,
        settings: Settings,
        init_model: Path | None,
        stop: threading.Event,
        text_encoder: TextEncoder | None = None,
    ) -> None:
        """``text_encoder`` (texts -> float32 [n, T]) replaces the served artifact's text tower
        for new catalogue items; tests inject a cheap one."""
        from streamrec.serving.registry import open_registry

        self.s = settings
        self.stop = stop
        self.device = pick_device(settings.device)  # device=cuda without CUDA: a UserError, before connecting
        log.info("online updates on %s (device=%s)", self.device, settings.device)
        self.metrics = TrainerMetrics()
        self.registry = open_registry(settings.registry.url, settings.data_dir, settings.redis_tls)
        self.lineage = settings.data_dir / "trainer" / "models"
        trained, version = resume_from(self.registry, self.lineage, init_model)
        self.served = Served(version)
        self.learner = OnlineLearner(trained, settings.trainer, settings.encoder, device=self.device)
        if text_encoder is None:
            text_encoder = self._text_encoder(version)
        self.catalogue = CatalogueSync(self.learner, text_encoder)
        self.offsets = TrainedOffsets()
        self.erasures = ErasureLedger(self.metrics.erased_examples, self.offsets)
        self._count_items()
        self.live = LiveGate(settings.trainer)
        self.producer = make_producer(settings.broker, settings.kafka_security)

    def _text_encoder(self, version: str) -> TextEncoder | None:
        """The served artifact's text tower; its text model missing here is a one-line error."""
        from streamrec.serving.artifact import ArtifactError

        dirs = search_dirs(self.s.encoder.text_model_dir)
        try:
            return artifact_text_encoder(self.registry.fetch(version), dirs, self.s.device)
        except ArtifactError as exc:
            raise UserError(f"cannot embed new catalogue items: {exc}") from None

    def _count_items(self) -> None:
        self.metrics.items.set(self.learner.n_items)
        self.metrics.new_items.set(self.learner.new_items)

    def run(self) -> None:
        consumer, sec = training_consumer(self.s), security_kwargs(self.s.kafka_security)
        items = ItemsReader(self.s.broker, self.s.topics.items, **sec)
        models = FollowerThread(self.s.broker, self.s.topics.models, **sec)
        self.erasures.follow(self.s.broker, self.s.topics.erasures, **sec)
        last_gate = time.monotonic()
        try:
            latest: dict | None = None  # the newest announcement of a version not our own, not acted on yet
            newest: dict | None = None  # the newest of any kind, read while the topic's replay lasts
            resumed = False
            while not self.stop.is_set():
                replayed = models.follower.caught_up.is_set()  # before the drain: then it holds the replay
                for rec in models.drain():
                    # our own promotions are skipped, not kept as the newest: one drained after a
                    # retrain's announcement would otherwise hide the retrain for good
                    ann = parse_announcement(rec.value)
                    if ann is not None and adoptable(ann, self.served.version, self.lineage):
                        latest = ann
                    if ann is not None and not resumed:
                        newest = ann
                if replayed and not resumed:  # a restart mid-trial judges the canary afresh
                    resumed, self.served.version = True, self.live.resume(newest, self.served.version)
                    if self.live.canary is not None:
                        self.learner.start_trial()
                if replayed and latest is not None:
                    self._announced(latest)
                    latest = None
                self.catalogue.handle(items.poll())
                if self.catalogue.pump():
                    self._count_items()
                polled = consumer.poll(timeout_ms=200, max_records=20) if self.erasures.apply(self.learner) else {}
                for records in polled.values():
                    for rec in records:
                        self._ingest(rec)
                if self.live.canary is not None:  # updates go on beside the trial's frozen weights
                    self._settle(consumer)
                for _ in range(4):  # a few updates per poll keeps up with ~1k examples/s on one core
                    loss = self.learner.step()
                    if loss is None:
                        break
                    self.metrics.updates.inc()
                    self.metrics.loss.set(loss)
                if self.served.newest_learned is not None:
                    self.metrics.model_age.set(time.time() - self.served.newest_learned)
                due = time.monotonic() - last_gate >= self.s.trainer.interval_s
                if due and self.live.canary is None and len(self.learner.pending) >= self.s.trainer.min_new_examples:
                    self._gate(consumer)
                    last_gate = time.monotonic()
        finally:
            consumer.close(autocommit=False)
            items.close()
            models.close()
            self.erasures.close()
            self.catalogue.close()
            self.producer.close()

    def _ingest(self, rec: ConsumerRecord) -> None:
        tp = TopicPartition(rec.topic, rec.partition)
        try:
            batch = decode_batch(rec.value)
        except TrainingBatchError as exc:
            log.warning("skipping unreadable training batch: %s", exc)
            self.offsets.skipped(tp, rec.offset)
            return
        self.live.observe(batch.examples)
        evicted, entered = self.offsets.evicted_untrained, rec.timestamp / 1000.0
        self.metrics.examples.inc(
            self.offsets.add(self.learner, tp, rec.offset, self.erasures.keep(batch.examples, entered), entered)
        )
        self.metrics.evicted_untrained.inc(self.offsets.evicted_untrained - evicted)

    def _announced(self, ann: dict) -> None:
        """Continue from the latest announced version if a retrain produced it (:mod:`streamrec.trainer.adopt`)."""
        if not adoptable(ann, self.served.version, self.lineage):
            return
        try:
            trained = fetch_trainable(self.registry, ann, self.lineage)
        except (ArtifactError, UserError) as exc:
            log.warning("announced %s: not continued from (%s)", ann["version"], exc)
            return
        if trained is None:
            log.info("announced %s carries no model directory: the trainer keeps its own lineage", ann["version"])
            return
        kept = self._rebase(trained, ann["version"])
        self.live.canary = None  # a retrain's announcement ends a trial (the workers drop it too)
        self.metrics.adoptions.inc()
        log.info(
            "continuing from %s (announced by a retrain): %d of %d held examples kept",
            ann["version"],
            sum(kept),
            len(kept),
        )

    def _rebase(self, trained: TrainedModel, version: str) -> list[bool]:
        """Continue from ``trained`` (served as ``version``) with every example held, none learned."""
        self.learner, kept = rebase(self.learner, trained)
        self.offsets.rebased(kept)
        self.catalogue.learner = self.learner
        self.served = Served(version)
        self._count_items()
        return kept

    def _gate(self, consumer: KafkaConsumer) -> None:
        result = self.learner.gate()
        for name, value in result.candidate.items():
            self.metrics.candidate.labels(metric=name).set(value)
        for name, value in result.served.items():
            self.metrics.served.labels(metric=name).set(value)
        numbers = (
            f"candidate ndcg@10 {result.candidate['ndcg@10']:.4f} hr@10 {result.candidate['hr@10']:.4f} vs served "
            f"{result.served['ndcg@10']:.4f} / {result.served['hr@10']:.4f} on {result.n} held-back examples"
        )
        if not result.promote:
            log.info("rejected: %s (tolerance %.3f)", numbers, self.s.trainer.tolerance)
            self.metrics.rejections.inc()
            self.learner.rejected()
            return
        share = self.s.trainer.canary_share
        version, ann = self._publish(result.candidate, share)
        if share > 0:
            self.live.start(ann, Canary(version, self.served.version, share))
            self.learner.start_trial()
            log.info("canary %s for %g%% of the users beside %s: %s", version, share, self.served.version, numbers)
            return
        self._promoted(version, numbers, consumer)

    def _settle(self, consumer: KafkaConsumer) -> None:
        """The live gate's decision, once there is one: the canary to everyone, or back to the stable."""
        settled = self.live.settle(lambda v: next(r for r in self.registry.list() if r.version == v).announcement())
        if settled is None:
            return
        canary, verdict, ann = settled
        send_announcement(self.producer, self.s.topics.models, ann)
        for role, tally in verdict.live.items():
            self.metrics.live.labels(version=role).set(tally["hit@10"])
        if verdict.rollout:
            self.metrics.canary_rollouts.inc()
            self._promoted(canary.version, f"rolled out: {verdict.reason}", consumer)
            return
        self.metrics.canary_rollbacks.inc()
        record_rollback(self.lineage, ann["rolled_back"])
        kept = self._rebase(load_model_dir(self.lineage / canary.stable), canary.stable)
        log.warning(
            "canary %s rolled back to %s: %s (%d held examples kept)",
            canary.version,
            canary.stable,
            verdict.reason,
            sum(kept),
        )

    def _promoted(self, version: str, numbers: str, consumer: KafkaConsumer) -> None:
        """``version`` serves everyone: the learner's candidate becomes its served model."""
        announced = time.time()
        learned = self.learner.promoted()
        for row in learned:
            self.metrics.freshness.observe(max(announced - row.entered_at, 0.0))
        if learned:
            self.served.newest_learned = max(r.entered_at for r in learned)
        self.served.version = version
        offsets = self.offsets.committable(self.learner)
        consumer.commit(offsets)
        self.metrics.promotions.inc()
        upto = ", ".join(f"{tp.partition}: {o.offset}" for tp, o in sorted(offsets.items()))
        log.info(
            "promoted %s: %s; learned from %d new examples; committed up to {%s}", version, numbers, len(learned), upto
        )

    def _publish(self, metrics: dict[str, float], canary_share: float) -> tuple[str, dict]:
        """Export into the registry and the lineage (:func:`streamrec.trainer.publish.export_candidate`),
        announce (as a canary beside the served version when ``canary_share`` > 0). Returns the
        version and its announcement for everyone."""
        version, ann = export_candidate(self.learner, self.s, self.registry, self.lineage, self.served.version, metrics)
        trial = as_canary(ann, self.served.version, canary_share) if canary_share > 0 else ann
        send_announcement(self.producer, self.s.topics.models, trial)
        self.registry.prune(self.s.registry.keep, protect=(version, self.served.version))
        return version, ann


def run_trainer(settings: Settings, init_model: Path | None, stop: threading.Event) -> None:
    from streamrec.trainer.status_server import serve_status

    torch.set_num_threads(1)  # leave the other core to the stream worker on a 2-core box
    proc = TrainerProcess(settings, init_model, stop)
    server = serve_status(
        settings.trainer.web_port, proc.metrics.registry, not_ready=lambda: ["stopping"] if stop.is_set() else []
    )
    try:
        proc.run()
    finally:
        server.shutdown()
