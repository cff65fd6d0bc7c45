"""``streamrec up``: the embedded broker and Redis (and the worker and trainer once built),
for trying streamrec with your own producer."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from streamrec.config import Settings
from streamrec.services import embedded_services

HELP = "start the embedded broker and Redis and keep them up until Ctrl-C or --duration"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--services-only", action="store_true", help="start only the broker and Redis")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")


def run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with embedded_services(settings.broker, settings.redis, settings.data_dir / "services") as svc:
        print(f"broker  {svc.broker}{'  (embedded Tansu, memory only)' if not settings.broker else ''}")
        print(f"redis   {svc.redis}{'  (embedded redis-server)' if not settings.redis else ''}")
        print("reach them with:")
        for k, v in svc.env().items():
            print(f"  export {k}={v}")
        if not args.services_only:
            print("(the stream worker and trainer are not built yet: services only)")
        print("Ctrl-C to stop" + (f", or wait {args.duration:g}s" if args.duration else ""), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait(args.duration)
    print("stopped")
    return 0
