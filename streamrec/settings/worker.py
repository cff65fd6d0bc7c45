"""Settings section owned by the streams package (the Faust stream worker)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamrec.settings.base import Section


class WorkerSettings(Section):
    """Stream worker knobs. Faust agents run with concurrency 1: with more, faust can commit the
    offset of a message still in flight and a SIGKILL loses it (faust #606)."""

    app_id: str = Field("streamrec-worker", description="faust app id = consumer group")
    store: str = Field("memory://", description="table store: memory:// or rocksdb:// (rocksdict)")
    batch_max_events: int = Field(256, ge=1, le=100_000, description="micro-batch size cap")
    batch_max_ms: int = Field(20, ge=1, le=60_000, description="micro-batch time cap")
    fetch_max_wait_ms: int = Field(
        50, ge=1, le=10_000, description="longest a fetch waits at the broker (faust hard-codes 1500)"
    )
    producer_max_batch_kb: int = Field(
        256, ge=16, le=4_096, description="largest record batch per partition the worker's producer builds"
    )
    score_threads: int = Field(
        0, ge=0, le=256, description="onnxruntime intra-op threads for scoring (0 = one per core)"
    )
    score_spinning: bool = Field(
        False, description="let idle scoring threads spin-wait (off: the cores are shared with the event loop)"
    )
    dedupe_window: int = Field(128, ge=1, description="recent event ids remembered per user")
    exclude_seen: bool = Field(True, description="drop items already in the session from the feed")
    live_feeds_kept: int = Field(
        200_000, ge=0, description="users whose newest feed digest is kept in memory for the live hit rate"
    )
    mmr_lambda: float = Field(1.0, ge=0, le=1, description="MMR re-rank trade-off; 1.0 = off")
    training_every_n: int = Field(256, ge=1, description="emit a training batch every N examples")
    training_every_s: float = Field(5.0, gt=0, description="... or every T seconds")
    session_timeout_s: float = Field(6.0, gt=0, description="broker session timeout (Tansu joins take ~half)")
    commit_interval_s: float = Field(1.0, gt=0, description="how often acked offsets are committed")
    web_port: int = Field(6066, ge=0, le=65535, description="metrics/health HTTP port (0 = any free)")
    web_host: str = Field("0.0.0.0", description="metrics/health HTTP bind address")
    redis_retry_base_s: float = Field(0.05, gt=0, description="first Redis retry delay (doubles per try)")
    redis_retry_max_s: float = Field(30.0, gt=0, description="cap of the Redis retry backoff")
    probe_interval_s: float = Field(2.0, gt=0, description="Kafka/Redis reachability and lag probe period")
    stall_s: float = Field(
        30.0,
        gt=0,
        description="/readyz fails once a partition with events waiting has made no progress for this long",
    )
    model_wait_log_s: float = Field(10.0, gt=0, description="log period while events wait for a first model")
    processing_guarantee: Literal["at_least_once"] = Field(
        "at_least_once", description="the only one offered: faust's exactly-once mode has open crash/duplicate bugs"
    )
