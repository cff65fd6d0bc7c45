"""``streamrec up``: the system without the replay, for trying streamrec with your own
producer: the embedded broker and Redis (unless given), an initial model if the registry has
none, the stream worker, the online trainer and the HTTP API (when its extra is installed).
Runs until Ctrl-C, SIGTERM or --duration."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import signal
import threading

from streamrec.config import Settings
from streamrec.local.stack import Stack, local_services
from streamrec.settings.cli import ALL

HELP = "start the broker, Redis, worker, trainer and HTTP API and keep them up until Ctrl-C or --duration"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (ALL,)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--services-only", action="store_true", help="start only the broker and Redis")
    parser.add_argument(
        "--durable",
        action="store_true",
        help="store the embedded broker's data on a local S3 server (moto), so a broker restart keeps it",
    )
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.add_argument("--initial-epochs", type=int, default=4, help="epochs of the initial model, if one is needed")


def run(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run_dir = (settings.data_dir / "up").resolve()
    with local_services(settings, run_dir, args.durable) as settings:
        stack = Stack(settings, run_dir)
        stack.prepare_topics()
        children_ok = True
        api = ""  # the line about the HTTP API, once it is started
        try:
            if not args.services_only:
                from streamrec.sample import write_sample

                items, events = write_sample(run_dir / "data")
                stack.ensure_model(events, items, args.initial_epochs, "the sample click log")
                stack.start_worker()
                stack.start_trainer()
                api = _start_api(stack)
            print(f"broker   {settings.broker}")
            print(f"redis    {settings.redis}")
            if stack.children:
                print(f"worker   http://127.0.0.1:{settings.worker.web_port}/metrics  (/healthz, /readyz)")
                print(f"trainer  http://127.0.0.1:{settings.trainer.web_port}/metrics")
                print(f"api      {api}")
                print(f"logs     {run_dir / 'logs'}")
            print("reach them with:")
            print(f"  export STREAMREC_BROKER={settings.broker} STREAMREC_REDIS={settings.redis}")
            print("  streamrec replay events.csv   # or your own producer, keyed by user id")
            print("Ctrl-C to stop" + (f", or wait {args.duration:g}s" if args.duration else ""), flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait(args.duration)
            children_ok = all(c.alive() for c in stack.children.values())
        finally:
            codes = stack.stop_children()
    print("stopped" + (f" (exit codes {codes})" if codes else ""))
    return 0 if children_ok else 1


def _start_api(stack: Stack) -> str:
    """Start the HTTP API when its extra is installed; the line ``up`` prints about it."""
    if importlib.util.find_spec("fastapi") is None:
        return "not started: pip install 'streamrec[api]'"
    token = stack.start_api()
    url = f"http://127.0.0.1:{stack.settings.api.port}"
    auth = f"token {token}" if token else "a token of STREAMREC_API__TOKENS"
    return f"{url}/v1/feeds/USER  ({auth}; spec {url}/openapi.json)"
