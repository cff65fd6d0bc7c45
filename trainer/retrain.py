"""A scheduled full retrain (``streamrec retrain``): rebuild the model offline, gate it against the
served version, and announce it only if it passes.

Online updates fine-tune one lineage for ever; a retrain starts again from the whole event log
(the events topic read from its first offset up to its end at the start, or an archive file of
it), with the offline trainer of ``streamrec train``. The newest ``retrain.holdout_events`` events
are held back from it: each becomes a gate example (its user's earlier events -> the event's
item), on which the candidate and the version the workers serve (the last announcement on
``streamrec.models``) are both scored, as artifacts, by the serving graph the workers run
(full catalogue, seen items excluded; a target an artifact does not hold is a miss). The
decision is the online trainer's rule (:func:`streamrec.encoder.gate.promotes`, with
``trainer.tolerance``). The candidate is exported and parity-checked into a scratch registry
first; only a candidate that passes is published into the registry and announced, carrying its
model directory (``model_dir.tar``) so the online trainer continues from it
(:mod:`streamrec.trainer.adopt`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.config import Settings
from streamrec.contracts.announcement import parse_announcement, send_announcement
from streamrec.contracts.erasure import latest_erasures
from streamrec.contracts.events import Event, Invalid, validate_bytes
from streamrec.datasets import EventLog, load_events, load_items
from streamrec.encoder.gate import promotes
from streamrec.encoder.metrics import hit_rate, ndcg
from streamrec.errors import UserError
from streamrec.kafka import make_producer, read_to_end
from streamrec.serving.registry import LocalRegistry, Registry, open_registry
from streamrec.text_models import search_dirs

log = logging.getLogger("streamrec.retrain")
MISS = 1 << 30  # the rank of a target the artifact did not list


@dataclass(frozen=True)
class GateExample:
    """A held-back event: its user's session before it (oldest first) and the item clicked."""

    items: list[str]
    types: list[str]
    target: str


@dataclass
class Outcome:
    """What a retrain decided, and on which numbers."""

    promoted: bool
    candidate: dict[str, float]
    served: dict[str, float]
    n: int  # gate examples
    served_version: str
    version: str | None = None  # the announced version, when promoted

    def numbers(self, tolerance: float) -> str:
        return (
            f"candidate ndcg@10 {self.candidate['ndcg@10']:.4f} hr@10 {self.candidate['hr@10']:.4f} vs served "
            f"{self.served_version} {self.served['ndcg@10']:.4f} / {self.served['hr@10']:.4f} on {self.n} "
            f"held-back events (tolerance {tolerance:g})"
        )


def hold_back(events: EventLog, n: int, session_length: int) -> tuple[EventLog, list[GateExample]]:
    """The older events to train on, and the newest ``n`` as gate examples (those whose user has an
    earlier event: the prefix, up to ``session_length`` events, held-back ones included, since a
    worker would have them in the session too)."""
    if len(events) <= n:
        raise UserError(
            f"{len(events)} events: too few to hold back {n} for the gate (retrain.holdout_events) "
            "and train on the rest"
        )
    cut = len(events) - n
    history: dict[str, list[Event]] = {}
    examples = []
    for k, ev in enumerate(events.events):
        seen = history.setdefault(ev.user_id, [])
        if k >= cut and seen:
            recent = seen[-session_length:]
            examples.append(GateExample([e.item_id for e in recent], [e.type for e in recent], ev.item_id))
        seen.append(ev)
    return EventLog(events.events[:cut], events.rejected), examples


def topic_events(settings: Settings) -> EventLog:
    """The events topic from its first offset to its end at the start, validated like the workers
    validate it (refused records are counted in ``rejected`` with their offsets), in time order.
    Events of erased users published before their erasure (``streamrec.erasures``) are left out."""
    s = settings
    erased = latest_erasures(read_to_end(s.broker, s.topics.erasures, s.kafka_security, s.retrain.idle_timeout_s))
    records = read_to_end(s.broker, s.topics.events, s.kafka_security, s.retrain.idle_timeout_s)
    events: list[Event] = []
    rejected: list[tuple[int, str]] = []
    left_out = 0
    for rec in records:
        result = validate_bytes(rec.value, settings.max_event_bytes)
        if isinstance(result, Invalid):
            rejected.append((rec.offset, result.reason))
        elif rec.timestamp / 1000.0 < erased.get(result.user_id, float("-inf")):
            left_out += 1
        else:
            events.append(result)
    if left_out:
        print(f"left out {left_out} events of {len(erased)} erased users", flush=True)
    if not events:
        raise UserError(f"topic {settings.topics.events} holds no valid event: nothing to retrain on")
    events.sort(key=lambda ev: ev.ts)
    return EventLog(events, rejected)


def served_announcement(settings: Settings) -> dict[str, Any]:
    """The last announcement on the models topic: the version the workers serve."""
    records = read_to_end(
        settings.broker, settings.topics.models, settings.kafka_security, settings.retrain.idle_timeout_s
    )
    announced = [a for a in (parse_announcement(r.value) for r in records) if a is not None]
    if not announced:
        raise UserError(
            f"nothing is announced on {settings.topics.models}: there is no served version to gate against "
            "(export and announce a first model: streamrec export, streamrec models announce)"
        )
    return announced[-1]


def score(artifact_dir: Path, examples: list[GateExample], settings: Settings) -> dict[str, float]:
    """HR@10 / NDCG@10 of one artifact on the gate examples, ranked by its own serving graph."""
    from streamrec.serving.runner import Runner

    runner = Runner.load(artifact_dir, settings.device, text_model_dirs=search_dirs(settings.encoder.text_model_dir))
    k = min(10, runner.k)
    recs = runner.recommend([e.items for e in examples], [e.types for e in examples], k=k, exclude_seen=True)
    ranks = np.array(
        [ids.index(e.target) if e.target in ids else MISS for (ids, _), e in zip(recs, examples, strict=True)]
    )
    return {"hr@10": hit_rate(ranks, 10), "ndcg@10": ndcg(ranks, 10)}


def retrain(settings: Settings, events_file: Path | None, items_file: Path | None, progress: bool) -> Outcome:
    """Rebuild, gate, and (if it passes) publish and announce; see the module docstring."""
    from streamrec.encoder.artifact import save_model_dir
    from streamrec.encoder.fit import fit_model

    try:
        registry = open_registry(settings.registry.url, settings.data_dir, settings.redis_tls)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    served = served_announcement(settings)
    served_dir = registry.fetch(served["version"], served.get("sha256"))
    catalogue = load_items(items_file) if items_file else None
    if events_file is not None:
        events = load_events(events_file)
        source = str(events_file)
    else:
        events = topic_events(settings)
        source = f"topic {settings.topics.events}"
    print(f"read {len(events)} events from {source} ({len(events.rejected)} invalid skipped)", flush=True)
    train_log, examples = hold_back(events, settings.retrain.holdout_events, settings.session_length)
    if not examples:
        raise UserError("no held-back event follows an earlier event of its user: nothing to gate on")
    trained = fit_model(settings, train_log, catalogue, progress)
    trained.metrics["retrain"] = {"events": len(train_log), "held_back": settings.retrain.holdout_events}
    work = settings.data_dir / "retrain"
    model_dir = save_model_dir(work / "model", trained)
    candidate = _export_candidate(settings, model_dir, LocalRegistry(work / "candidates"), served["version"])
    try:
        outcome = Outcome(
            promoted=False,
            candidate=score(candidate, examples, settings),
            served=score(served_dir, examples, settings),
            n=len(examples),
            served_version=served["version"],
        )
        outcome.promoted = promotes(outcome.candidate, outcome.served, settings.trainer.tolerance)
        if outcome.promoted:
            outcome.version = _publish(settings, registry, candidate)
        return outcome
    finally:
        shutil.rmtree(candidate, ignore_errors=True)


def _export_candidate(settings: Settings, model_dir: Path, scratch: LocalRegistry, parent: str) -> Path:
    """Export + parity check into the scratch registry: the candidate as the workers would load it."""
    from streamrec.export.exporter import export_model_dir

    result = export_model_dir(
        model_dir,
        scratch,
        k=settings.k,
        pool=settings.pool,
        fp16=settings.registry.fp16,
        int8=settings.registry.int8,
        parent=parent,
        text_dirs=search_dirs(settings.encoder.text_model_dir),
        text_cache=settings.data_dir / "cache",
        ship_model_dir=True,
        ann_min_items=settings.serving.ann_min_items,
        progress=log.info,
    )
    return scratch.fetch(result.ref.version)


def _publish(settings: Settings, registry: Registry, candidate: Path) -> str:
    """Publish the checked candidate, announce it as the online trainer announces, prune."""
    ref = registry.publish(candidate)
    with contextlib.closing(make_producer(settings.broker, settings.kafka_security)) as producer:
        send_announcement(producer, settings.topics.models, ref.announcement())
    registry.prune(settings.registry.keep, protect=(ref.version,))
    return ref.version
