"""``streamrec bench``: end-to-end, model-path and scaling benchmarks (issue #8).

The code lives in ``bench/`` (installed as ``streamrec.bench``); this command picks the parts,
runs them in one process and writes the JSON and, with ``--results DIR``, ``RESULTS.md`` and the
plots.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.errors import UserError
from streamrec.settings.cli import ALL

HELP = (
    "benchmarks: end to end through one worker, eager torch vs onnxruntime, scaling, the HTTP API's feed reads; "
    "JSON + RESULTS.md"
)
# The settings it reads (its --help lists their flags; docs/configuration.md).
SETTINGS = (ALL,)
PARTS = ("e2e", "model", "scaling", "api", "ann")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write every figure here")
    parser.add_argument("--quick", action="store_true", help="small grids and short windows (CI smoke, < 3 min)")
    parser.add_argument(
        "--only",
        default=",".join(PARTS[:3]),
        help=f"comma-separated parts: {','.join(PARTS)} (default: e2e,model,scaling)",
    )
    parser.add_argument(
        "--results", type=Path, default=None, metavar="DIR", help="write RESULTS.md and PNG plots into DIR"
    )
    parser.add_argument(
        "--loads", default=None, help="comma-separated offered loads for the e2e part (default 250,1000,4000)"
    )
    parser.add_argument(
        "--fetch-compare-ms",
        type=int,
        default=None,
        metavar="MS",
        help="also run the e2e part with the worker consumer's fetch_max_wait_ms = MS (1500 = faust's own)",
    )
    parser.add_argument("--no-profile", action="store_true", help="do not py-spy the worker")
    parser.add_argument(
        "--soak",
        action="store_true",
        help="instead of the parts: the soak under faults on the durable broker (worker SIGKILL every 60 s, one "
        "Redis and one broker restart; long: events / rate seconds)",
    )
    parser.add_argument("--soak-events", type=int, default=500_000, metavar="N", help="events of the soak")
    parser.add_argument("--soak-rate", type=float, default=500.0, metavar="R", help="events/s of the soak")
    parser.add_argument("--soak-kill-every", type=float, default=60.0, metavar="S", help="worker SIGKILL period")


def parse_parts(only: str) -> list[str]:
    parts = [p.strip() for p in only.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UserError(f"--only: unknown part(s) {bad or only!r}; choose from {', '.join(PARTS)}")
    return parts


def parse_loads(loads: str | None) -> tuple[int, ...] | None:
    if loads is None:
        return None
    try:
        out = tuple(int(x) for x in loads.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--loads: expected comma-separated integers, got {loads!r}") from None
    if not out or any(x <= 0 for x in out):
        raise UserError(f"--loads: rates must be positive, got {loads!r}")
    return out


def run(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from streamrec.bench import report

    if args.soak:
        return run_soak(args, settings)
    parts = parse_parts(args.only)
    loads = parse_loads(args.loads)
    if args.fetch_compare_ms is not None and not 1 <= args.fetch_compare_ms <= 60_000:
        raise UserError("--fetch-compare-ms must be between 1 and 60000")
    result: dict[str, Any] = {"machine": report.machine(), "quick": args.quick, "parts": parts}
    if "e2e" in parts:
        from streamrec.bench.e2e_bench import E2EConfig, run_e2e_bench
        from streamrec.bench.profile import py_spy

        cfg = E2EConfig.quick() if args.quick else E2EConfig()
        cfg = replace(cfg, profile=not args.no_profile and py_spy() is not None and not args.quick)
        if loads:
            cfg = replace(cfg, loads=loads)
        result["e2e"] = run_e2e_bench(settings, cfg)
        if args.fetch_compare_ms is not None:
            other = run_e2e_bench(settings, replace(cfg, fetch_max_wait_ms=args.fetch_compare_ms))
            result["e2e_fetch_compare"] = other | report.e2e_summary(other)
    if "model" in parts:
        from streamrec.bench.model_bench import run_model_bench

        print("── model path: eager torch vs onnxruntime", flush=True)
        result["model"] = run_model_bench(
            quick=args.quick,
            catalogues=[10_000] if args.quick else [10_000, 100_000, 1_000_000],
            batches=[1, 64] if args.quick else [1, 16, 64, 256],
            device=settings.device,
        )
    if "scaling" in parts:
        from streamrec.bench.scaling_bench import run_scaling_bench

        result["scaling"] = run_scaling_bench(args.quick, (result.get("model") or {}).get("runs"))
    if "api" in parts:
        from streamrec.bench.api_bench import ApiBenchConfig, run_api_bench

        result["api"] = run_api_bench(settings, ApiBenchConfig.quick() if args.quick else ApiBenchConfig())
    if "ann" in parts:
        from streamrec.bench.ann_bench import run_ann_bench

        result["ann"] = run_ann_bench(quick=args.quick)
    result["machine"]["loadavg_end"] = os.getloadavg()
    report.summarise(result)
    command = "streamrec bench " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "streamrec bench"
    if args.json:
        report.write_json(result, args.json)
        print(f"results written to {args.json}")
    if args.results:
        write_results(result, args.results, command)
    _print_summary(result)
    return 0


def run_soak(args: argparse.Namespace, settings: Settings) -> int:
    """The soak; exit 1 when a target was missed (the JSON says which)."""
    from streamrec.bench import report
    from streamrec.bench.soak import run_soak
    from streamrec.bench.soak_parts import SoakConfig, print_soak

    if args.soak_events < 1 or args.soak_rate <= 0 or args.soak_kill_every <= 0:
        raise UserError("--soak-events, --soak-rate and --soak-kill-every must be positive")
    cfg = SoakConfig(events=args.soak_events, rate=args.soak_rate, kill_every_s=args.soak_kill_every)
    result = run_soak(settings, cfg)
    result["command"] = "streamrec bench " + shlex.join(sys.argv[2:])
    if args.json:
        report.write_json(result, args.json)
        print(f"results written to {args.json}")
    print_soak(result)
    return 0 if result["targets"]["all"] else 1


def write_results(result: dict[str, Any], out_dir: Path, command: str) -> None:
    from streamrec.bench import report

    out_dir.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    if report.plot_latency_vs_load(result, out_dir / "latency_vs_load.png"):
        plots["latency_vs_load"] = "latency_vs_load.png"
    if report.plot_throughput_vs_catalogue(result, out_dir / "throughput_vs_catalogue.png"):
        plots["throughput_vs_catalogue"] = "throughput_vs_catalogue.png"
    (out_dir / "RESULTS.md").write_text(report.results_md(result, command, plots))
    print(f"RESULTS.md and plots written to {out_dir}")


def _print_summary(result: dict[str, Any]) -> None:
    api = result.get("api")
    if api:
        a, d = api["api"]["latency_ms"], api["direct_redis"]["latency_ms"]
        print(
            f"api: GET feed at {api['config']['rate']:,}/s: p50 {a['p50']:.2f} ms, p99 {a['p99']:.2f} ms "
            f"(direct HGET p50 {d['p50']:.2f}, p99 {d['p99']:.2f} ms; {api['api']['errors']} errors)"
        )
    e2e = result.get("e2e")
    if e2e:
        print(f"e2e: {e2e['events_per_s']:,.0f} events/s at saturation")
        for rate, p50 in e2e["latency_ms"]["p50"].items():
            print(f"  {rate:>5}/s offered: p50 {p50:,.0f} ms, p99 {e2e['latency_ms']['p99'][rate]:,.0f} ms")
    ovt = (result.get("model") or {}).get("onnx_vs_torch")
    if ovt:
        ratios = ", ".join(f"{k} {v:.2f}x" for k, v in ovt.items() if k.startswith("batch_"))
        print(f"model: onnxruntime vs eager torch at {ovt['items']:,} items: {ratios}")
