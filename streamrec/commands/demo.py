"""``streamrec demo``: the whole system on one machine, in one command, with a live view.

Embedded broker and Redis → sample catalogue and click log (or ``--events/--items``) → an
initial model trained on the older part of the log, exported and announced → the stream
worker and the online trainer as child processes → the newer part of the log replayed in
time order while a live view shows what the processes themselves measure.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.errors import UserError
from streamrec.local.demo_run import DemoRun, Timeline, summary_dict
from streamrec.local.stack import local_services
from streamrec.settings.cli import ALL

HELP = "run the whole system on one machine: broker, Redis, model, worker, trainer, replay, live view"
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (ALL,)
SAMPLE_EPOCHS = 4  # the generated sample trains in seconds; a quick fixed count keeps the demo snappy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=Path, default=None, help="events file to use instead of the sample")
    parser.add_argument("--items", type=Path, default=None, help="items file (with --events)")
    parser.add_argument(
        "--max-events", dest="n_events", type=int, default=None, metavar="N", help="replay at most N events"
    )
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop replaying after S seconds")
    parser.add_argument("--rate", type=float, default=200.0, help="replay rate, events/s (0 = as fast as possible)")
    parser.add_argument(
        "--train-fraction",
        type=float,
        default=0.5,
        help="older share of the log used to train the initial model; the rest is replayed",
    )
    parser.add_argument(
        "--initial-epochs",
        type=int,
        default=None,
        help=f"epochs of the initial model (default: {SAMPLE_EPOCHS} on the sample data; with --events, what "
        "`streamrec train` does by default: early stopping within the training budget)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample data")
    parser.add_argument("--summary", type=Path, default=None, help="write the summary JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of throughput, latency, hit rate")
    parser.add_argument("--no-live", action="store_true", help="plain progress lines instead of the live view")
    parser.add_argument("--no-trainer", action="store_true", help="do not run the online trainer (frozen model)")


def initial_epochs(args: argparse.Namespace) -> int | None:
    """--initial-epochs, else a quick fixed count on the generated sample, else None: a real log
    gets the model `streamrec train` would make of it."""
    if args.initial_epochs is not None:
        return args.initial_epochs
    return SAMPLE_EPOCHS if args.events is None else None


def _split_log(events_path: Path, out_dir: Path, fraction: float, limit: int | None) -> tuple[Path, list[Any]]:
    """Older ``fraction`` of the log to a training file; the newer rest (time order) to replay."""
    from streamrec.datasets import load_events, split_events

    older, replay = split_events(load_events(events_path).events, fraction)
    train_path = out_dir / "initial-train.csv"
    with train_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "user_id", "item_id", "type", "ts"])
        for ev in older:
            w.writerow([ev.event_id, ev.user_id, ev.item_id, ev.type, ev.ts])
    return train_path, replay[:limit] if limit is not None else replay


def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.events is None) != (args.items is None) and args.items is not None:
        raise UserError("--items needs --events")
    if not 0.0 < args.train_fraction < 1.0:
        raise UserError(f"--train-fraction must be between 0 and 1, got {args.train_fraction}")
    if args.events is not None and not args.events.exists():
        raise UserError(f"{args.events}: no such file")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run_dir = (settings.data_dir / "demo").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)

    with local_services(settings, run_dir) as settings:
        print(f"broker {settings.broker}   redis {settings.redis}   run dir {run_dir}", flush=True)
        if args.events is None:
            from streamrec.sample import write_sample

            items_path, events_path = write_sample(run_dir / "data", seed=args.seed)
            print(f"sample data: {items_path}, {events_path}", flush=True)
        else:
            items_path, events_path = args.items, args.events
        train_path, replay = _split_log(events_path, run_dir, args.train_fraction, args.n_events)
        demo = DemoRun(settings, run_dir, replay)
        demo.prepare_topics()
        demo.ensure_model(
            train_path, items_path, initial_epochs(args), f"the older {args.train_fraction:.0%} of the log"
        )
        try:
            demo.start_worker()
            if not args.no_trainer:
                demo.start_trainer()
            timeline: Timeline = demo.replay(args.rate, args.duration, live=not args.no_live, stop=stop)
            demo.drain(timeline.produced, timeout_s=60.0)
            if not args.no_trainer:
                demo.settle(timeout_s=2 * settings.trainer.interval_s + 10)
        finally:
            codes = demo.stop_children()
        summary = summary_dict(demo, timeline, codes)
    _print_summary(summary)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2))
        print(f"summary written to {args.summary}")
    if args.plot:
        from streamrec.local.demo_plot import plot_timeline

        plot_timeline(timeline, args.plot)
        print(f"plot written to {args.plot}")
    lost = summary["events_produced"] - summary["events_processed"]
    failed = {name: code for name, code in summary["exit_codes"].items() if code != 0}
    if failed:
        print(f"streamrec demo: child process(es) failed: {failed}; logs in {run_dir / 'logs'}", file=sys.stderr)
    return 0 if lost <= 0 and not failed else 1


def _print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="streamrec demo: summary", show_header=False)
    for key, value in summary.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    Console().print(table)
