"""Offline training speed, before and after, in one run: seconds per epoch of ``streamrec train``'s
``Trainer.fit`` on the same log, for a baseline git revision and for the working tree.

The baseline runs from ``git archive <rev>`` in a child process whose ``streamrec.*`` packages are
mapped onto that tree (the layout named by its own ``pyproject.toml``), so both sides run the
code as it was, with the same torch, data, settings and machine. A third arm runs the current
code with the baseline's OpenMP wait policy (spinning), which separates the code's share of the
speed-up from the thread setting's. The arms alternate (baseline, current, current-spinning,
...) so load from other processes on a shared machine hits all alike; the JSON keeps every run,
and the figure is the median s/epoch (wall clock, validation included).

    python -m streamrec.bench.train_speed --events ml-100k.inter --items ml-100k.item \\
        --baseline 1fddd65 --epochs 3 --repeats 2 --json bench/train_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from streamrec.bench.report import machine

# Runs in the child: maps streamrec.* onto SRC (if set), trains EPOCHS epochs, prints one JSON line.
CHILD = r"""
import importlib.machinery, importlib.util, json, os, pathlib, sys, time, tomllib
src = os.environ.get("SPEED_SRC")
if src:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
    dirs = tomllib.loads(open(os.path.join(src, "pyproject.toml")).read())["tool"]["setuptools"]["package-dir"]
    for name in sorted(dirs, key=lambda n: n.count(".")):
        path = os.path.join(src, dirs[name])
        init = os.path.join(path, "__init__.py")
        if os.path.exists(init):
            spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[path])
        else:  # a namespace package
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [path]
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        if spec.loader is not None:
            spec.loader.exec_module(mod)
import torch
from streamrec.datasets import load_events, load_items
try:
    from streamrec.settings.encoder import EncoderSettings
except ImportError:  # layout before the restructure
    from streamrec.encoder.settings import EncoderSettings
from streamrec.encoder.trainer import Trainer
args = json.loads(os.environ["SPEED_ARGS"])
log = load_events(args["events"])
items = load_items(args["items"]) if args["items"] else None
settings = EncoderSettings(epochs=args["epochs"], patience=args["epochs"] + 1, max_minutes=1e6, seed=args["seed"])
trainer = Trainer(log, items, settings, 50, torch.device("cpu"), cache_dir=pathlib.Path(args["cache"]), progress=False)
cpu0 = time.process_time()
trained = trainer.fit()
import streamrec.encoder.trainer as t
print(json.dumps({
    "source": t.__file__,
    "train_seconds": trained.metrics["train_seconds"],
    "cpu_seconds": round(time.process_time() - cpu0, 1),
    "epochs": trained.metrics["epochs"],
    "threads": torch.get_num_threads(),
}))
"""


def _export(rev: str, dest: Path) -> Path:
    """The tree of ``rev`` (committed files only) under ``dest``."""
    archive = dest / "src.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", rev], check=True, stdout=fh)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "src", filter="data")
    return dest / "src"


def _run(src: Path | None, args: dict[str, Any], passive: bool) -> dict[str, Any]:
    """One training run in a child: the tree at ``src`` (None = the installed working tree);
    ``passive`` sets OMP_WAIT_POLICY=PASSIVE, what the streamrec CLI now sets before torch loads."""
    env = {**os.environ, "SPEED_ARGS": json.dumps(args)}
    env.pop("SPEED_SRC", None)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("OMP_NUM_THREADS", None)
    if src is not None:
        env["SPEED_SRC"] = str(src)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"training run failed ({'baseline' if src else 'current'}):\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["s_per_epoch"] = round(res["train_seconds"] / len(res["epochs"]), 2)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", required=True)
    p.add_argument("--items", default=None)
    p.add_argument("--baseline", required=True, help="git revision to compare against (e.g. the commit before)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        base_src = _export(a.baseline, Path(tmp))
        args = {"events": a.events, "items": a.items, "epochs": a.epochs, "seed": a.seed, "cache": f"{tmp}/cache"}
        # current-spinning: today's code with the OpenMP wait policy the baseline ran with, to
        # tell the code's share of the speed-up from the thread setting's.
        arms = (("baseline", base_src, False), ("current", None, True), ("current-spinning", None, False))
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in arms}
        for r in range(a.repeats):
            for name, src, passive in arms:
                t0 = time.monotonic()
                res = _run(src, args, passive)
                runs[name].append(res)
                print(f"repeat {r + 1}: {name} {res['s_per_epoch']} s/epoch ({time.monotonic() - t0:.0f}s)", flush=True)
    median = {k: statistics.median(x["s_per_epoch"] for x in v) for k, v in runs.items()}
    last_val = {k: [x["epochs"][-1]["ndcg@10"] for x in v] for k, v in runs.items()}
    result = {
        "what": "Trainer.fit s/epoch (wall, validation included), default EncoderSettings, session length 50",
        "events": a.events,
        "items": a.items,
        "epochs_per_run": a.epochs,
        "baseline_rev": a.baseline,
        "current_rev": f"{head} + working tree",
        "median_s_per_epoch": median,
        "speedup": round(median["baseline"] / median["current"], 2),
        "speedup_same_thread_policy": round(median["baseline"] / median["current-spinning"], 2),
        f"val_ndcg@10_after_{a.epochs}_epochs": last_val,
        "runs": runs,
        "machine": machine(),
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("median_s_per_epoch", "speedup", "speedup_same_thread_policy")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
