"""``streamrec api``: the HTTP service (feeds, events, items, models), until SIGTERM."""

from __future__ import annotations

import argparse

from streamrec.config import Settings

HELP = "run the HTTP API: GET feeds, POST events and items, model versions, health and metrics"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (
    "broker",
    "redis",
    "redis_tls",
    "data_dir",
    "feed_prefix",
    "max_event_bytes",
    "topics",
    "kafka_security",
    "registry",
    "api",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Everything is a setting (``--api-*`` flags, ``STREAMREC_API__*`` variables)."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.api.server import serve  # fastapi and uvicorn load only here

    serve(settings)
    return 0
