"""``streamrec worker``: the Faust stream worker (events -> sessions -> feeds), until SIGTERM."""

from __future__ import annotations

import argparse

from streamrec.config import Settings

HELP = "run the Faust stream worker against the configured broker and Redis"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (
    "broker",
    "redis",
    "redis_tls",
    "data_dir",
    "partitions",
    "replication",
    "k",
    "pool",
    "session_length",
    "device",
    "feed_prefix",
    "feed_ttl_s",
    "max_event_bytes",
    "topics",
    "kafka_security",
    "registry",
    "serving",
    "worker",
    "hybrid",
    "encoder",
    "experiment",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything is a setting (``--worker-*`` flags, ``STREAMREC_WORKER__*`` variables)."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.streams.worker import run_worker  # faust and onnxruntime load only here

    return run_worker(settings)
