"""Run one stream worker process until SIGTERM/SIGINT (graceful: the batch in flight finishes
or is left uncommitted, processed offsets are committed) or a fatal error (exit code 1)."""

from __future__ import annotations

import gc
import logging

import faust

from streamrec.config import Settings
from streamrec.errors import UserError
from streamrec.kafka import ensure_topics, partitions_of, topic_plan
from streamrec.net import free_port
from streamrec.serving.providers import choose_providers
from streamrec.streams.app import WorkerRuntime
from streamrec.streams.artifacts import make_loader

log = logging.getLogger(__name__)


def tune_gc() -> None:
    """Fewer, larger young collections, and the start-up heap (modules, faust, onnxruntime
    bindings) kept out of every full collection. With the default threshold (700) the
    collector ran ~60 times a second at saturation (~2,200 events/s) and took ~10% of the
    event loop's time, 6 points of it in full collections over the session table; at 50,000
    it ran fewer than 200 times in a whole benchmark."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _check_copartitioned(settings: Settings) -> None:
    """The erasure topic must have the events topic's partitions: the worker's agent consumes
    both, and a user's erasure must reach the worker that owns the user's session (faust would
    refuse each erasure's table delete otherwise)."""
    t = settings.topics
    counts = partitions_of(settings.broker, [t.events, t.erasures], settings.kafka_security)
    if counts[t.erasures] != counts[t.events]:
        raise UserError(
            f"topic {t.erasures} has {counts[t.erasures]} partitions but {t.events} has {counts[t.events]}: "
            f"recreate {t.erasures} with {counts[t.events]} (erasures are co-partitioned with the events)"
        )


def run_worker(settings: Settings) -> int:
    if not settings.broker or not settings.redis:
        raise UserError("the worker needs --broker and --redis (or STREAMREC_BROKER / STREAMREC_REDIS)")
    # Before anything connects: device=cuda where onnxruntime cannot run on CUDA is a one-line
    # DeviceError here, not a worker that serves from the CPU; auto logs why it falls back.
    choice = choose_providers(settings.device)
    if settings.worker.web_port == 0:
        settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"web_port": free_port()})})
    # Idempotent; never changes an existing topic's partition count (that would move users).
    ensure_topics(settings.broker, topic_plan(settings), settings.replication, settings.kafka_security)
    _check_copartitioned(settings)
    runtime = WorkerRuntime(settings, make_loader(settings))
    runtime.metrics.set_provider(choice.provider, choice.device, choice.reason)  # each loaded model updates it
    log.info("metrics and health on http://%s:%d/metrics", settings.worker.web_host, settings.worker.web_port)
    worker = faust.Worker(runtime.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    tune_gc()
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        runtime.close()
    if runtime.fatal is not None:
        log.critical("worker stopped on a fatal error: %r", runtime.fatal)
        return 1
    return code
