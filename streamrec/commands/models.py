"""``streamrec models``: list the registry, and announce a version (first model, rollback)."""

from __future__ import annotations

import argparse
import contextlib
import time

from streamrec.config import Settings
from streamrec.errors import UserError

HELP = "list model versions in the registry, or announce one to the workers (rollback)"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = ("data_dir", "registry", "redis_tls", "broker", "kafka_security", "topics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "announce"), help="list versions, or announce one")
    parser.add_argument("version", nargs="?", default=None, help="version to announce (default: the newest)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.serving.registry import open_registry

    try:
        registry = open_registry(settings.registry.url, settings.data_dir, settings.redis_tls)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    refs = registry.list()
    if args.action == "list":
        if not refs:
            print("the registry is empty")
        for ref in refs:
            created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ref.created))
            print(f"{ref.version}  created {created}  parent {ref.parent or '-'}  sha256 {ref.sha256[:12]}")
        return 0
    if not settings.broker:
        raise UserError("no broker to announce on: pass --broker HOST:PORT or set STREAMREC_BROKER")
    if not refs:
        raise UserError("the registry is empty: export a model first (streamrec export --model DIR)")
    chosen = refs[-1] if args.version is None else next((r for r in refs if r.version == args.version), None)
    if chosen is None:
        raise UserError(f"version {args.version!r} is not in the registry (see: streamrec models list)")
    from streamrec.serving.artifact import ArtifactError

    try:
        registry.fetch(chosen.version, chosen.sha256)  # refuse to announce what a worker would refuse to load
    except ArtifactError as exc:
        raise UserError(f"not announced: {exc}") from None
    from streamrec.contracts.announcement import send_announcement
    from streamrec.kafka import make_producer

    with contextlib.closing(make_producer(settings.broker, settings.kafka_security)) as producer:
        send_announcement(producer, settings.topics.models, chosen.announcement())
    print(f"announced {chosen.version} on {settings.topics.models}")
    return 0
