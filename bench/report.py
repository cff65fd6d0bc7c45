"""Shaping the benchmark results: the machine description, the summary figures the issue names
(``e2e.events_per_s``, ``e2e.latency_ms.p50/p99`` at the fixed loads,
``model.onnx_vs_torch.batch_1/.batch_64``), ``RESULTS.md`` and the PNG plots."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

# Worker targets (issue #4) reported against the e2e figures.
TARGET_EVENTS_PER_S = 2000.0
TARGET_P99_MS_AT_1000 = 250.0


def machine() -> dict[str, Any]:
    out: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _mem_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": _git_commit(),
    }
    for mod in ("onnxruntime", "torch", "faust", "aiokafka", "redis", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # absent or no version attribute: leave it out
            continue
    try:
        import onnxruntime as ort

        out["onnxruntime_providers"] = ort.get_available_providers()
    except Exception:
        out["onnxruntime_providers"] = []
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return math.nan


def _git_commit() -> str:
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------------------- summary figures
def e2e_summary(e2e: dict[str, Any]) -> dict[str, Any]:
    """``latency_ms.p50[rate]`` etc. from the per-load rows; ``events_per_s`` at saturation."""
    loads = e2e.get("loads", [])
    lat = {q: {str(r["offered_per_s"]): r["latency_ms"][q] for r in loads} for q in ("p50", "p95", "p99")}
    return {"events_per_s": e2e.get("events_per_s", math.nan), "latency_ms": lat}


def onnx_vs_torch(model: dict[str, Any], preferred_items: int = 100_000) -> dict[str, Any]:
    """Speed-up ratios (eager ms / onnxruntime ms), measured in the same run, per batch size at
    one catalogue size (100k when it was run), and the full grid ``by_items``."""
    runs = model.get("runs", [])
    sizes = sorted({r["items"] for r in runs})
    if not sizes:
        return {}
    items = preferred_items if preferred_items in sizes else sizes[0]
    out: dict[str, Any] = {"items": items}
    for r in runs:
        if r["items"] == items:
            out[f"batch_{r['batch']}"] = r["speedup"]
    out["by_items"] = {str(n): {f"batch_{r['batch']}": r["speedup"] for r in runs if r["items"] == n} for n in sizes}
    return out


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Add the summary keys in place and return ``result``."""
    if "e2e" in result:
        result["e2e"] |= e2e_summary(result["e2e"])
        result["e2e"]["targets"] = targets(result["e2e"])
    if "model" in result:
        result["model"]["onnx_vs_torch"] = onnx_vs_torch(result["model"])
    return result


def targets(e2e: dict[str, Any]) -> dict[str, Any]:
    p99_1000 = e2e.get("latency_ms", {}).get("p99", {}).get("1000", math.nan)
    eps = e2e.get("events_per_s", math.nan)
    return {
        "events_per_s": {"target": TARGET_EVENTS_PER_S, "measured": eps, "met": eps >= TARGET_EVENTS_PER_S},
        "p99_ms_at_1000": {
            "target": TARGET_P99_MS_AT_1000,
            "measured": p99_1000,
            "met": p99_1000 < TARGET_P99_MS_AT_1000,
        },
    }


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(result), indent=1, allow_nan=False))
    tmp.rename(path)


def _clean(x: Any) -> Any:
    """NaN/inf -> null (JSON has neither); tuples -> lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


# ---------------------------------------------------------------------------- plots
def _fetch_label(r: dict[str, Any]) -> str:
    return f"fetch_max_wait_ms={r.get('worker_fetch_max_wait_ms', '?')}"


def plot_latency_vs_load(result: dict[str, Any], path: Path) -> bool:
    runs = [(_fetch_label(r), r) for r in (result.get("e2e"), result.get("e2e_fetch_compare")) if r and r.get("loads")]
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (label, r), style in zip(runs, ("-", "--"), strict=False):
        rates = [row["offered_per_s"] for row in r["loads"]]
        for q, color in (("p50", "tab:blue"), ("p95", "tab:orange"), ("p99", "tab:red")):
            ax.plot(
                rates,
                [row["latency_ms"][q] for row in r["loads"]],
                style,
                marker="o",
                color=color,
                label=f"{q} {label}",
            )
    ax.axhline(TARGET_P99_MS_AT_1000, color="grey", lw=0.8, ls=":", label="p99 target at 1,000/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (events/s)")
    ax.set_ylabel("event → feed latency (ms)")
    ax.set_title("streamrec: event→feed latency vs load (one worker)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_throughput_vs_catalogue(result: dict[str, Any], path: Path) -> bool:
    runs = result.get("model", {}).get("runs", [])
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for b in sorted({r["batch"] for r in runs}):
        rows = sorted((r for r in runs if r["batch"] == b), key=lambda r: r["items"])
        x = [r["items"] for r in rows]
        ax.plot(x, [r["runner_events_per_s"] for r in rows], marker="o", label=f"onnxruntime runner, batch {b}")
        ax.plot(x, [r["eager_events_per_s"] for r in rows], marker="x", ls=":", label=f"eager torch, batch {b}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("catalogue size (items)")
    ax.set_ylabel("sessions scored per second")
    ax.set_title("scoring throughput vs catalogue size (d=128, L=50, top-20)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------- RESULTS.md
def _f(x: Any, fmt: str = ",.0f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, fmt)


def _load_rows(r: dict[str, Any]) -> list[str]:
    rows = [
        "| offered/s | achieved/s | p50 ms | p95 ms | p99 ms | events/batch | scoring ms/batch "
        "| scoring share | load avg |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in r.get("loads", []):
        lat = row["latency_ms"]
        rows.append(
            f"| {row['offered_per_s']:,} | {_f(row['events_per_s'])} | {_f(lat['p50'])} | {_f(lat['p95'])} "
            f"| {_f(lat['p99'])} | {_f(row['batch_mean_events'], '.1f')} | {_f(row['score_ms_per_batch'], '.1f')} "
            f"| {_f(row['score_share_of_wall'], '.0%')} | {_f(row.get('loadavg', [math.nan])[0], '.1f')} |"
        )
    return rows


def _saturation_rows(r: dict[str, Any]) -> list[str]:
    s = r.get("saturation")
    if not s:
        return []
    alone = s.get("worker_alone") or {}
    return [
        f"Saturation: a backlog of {s['events']:,} events → **{_f(r.get('events_per_s'))} events/s** "
        f"(overall {_f(s['events_per_s_overall'])}/s incl. the time the producer shared the CPU; "
        f"{_f(alone.get('events_per_s'))}/s once it stopped, {_f(alone.get('batch_mean_events'), '.0f')} events "
        f"and {_f(alone.get('score_ms_per_batch'), '.0f')} ms of scoring per batch).",
        *(
            [
                "CPU while it drained alone (cores of 2): "
                + ", ".join(f"{role} {used:.2f}" for role, used in sorted(alone["cores"].items(), key=lambda x: -x[1]))
                + "."
            ]
            if alone.get("cores")
            else []
        ),
    ]


def _profile_rows(title: str, prof: dict[str, Any] | None) -> list[str]:
    if not prof or "threads" not in prof:
        return [f"{title}: {prof.get('skipped', 'not profiled') if prof else 'not profiled'}", ""]
    rows = [f"**{title}** (py-spy, {prof['seconds']:.0f} s; share of each thread's samples)", ""]
    rows += ["| thread | busy | stage | share |", "| --- | ---: | --- | ---: |"]
    for name, t in prof["threads"].items():
        first = True
        for stage, share in t["stages"].items():
            if share < 0.01:
                continue
            rows.append(
                f"| {name if first else ''} | {_f(t['busy_share'], '.0%') if first else ''} | {stage} | {share:.0%} |"
            )
            first = False
    return [*rows, ""]


def results_md(result: dict[str, Any], command: str, plots: dict[str, str]) -> str:
    m = result.get("machine", {})
    lines = [
        "# streamrec benchmark results",
        "",
        f"Made by `{command}` on {m.get('time', '?')} (commit {m.get('git_commit', '?')}). "
        "Every figure is in [`results.json`](results.json).",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GB; "
        f"onnxruntime {m.get('onnxruntime', '?')} ({', '.join(m.get('onnxruntime_providers', []))}), "
        f"torch {m.get('torch', '?')}, faust {m.get('faust', '?')}, aiokafka {m.get('aiokafka', '?')}. "
        f"Load average at start {_f(m.get('loadavg_start', [math.nan])[0], '.1f')}, "
        f"at end {_f(m.get('loadavg_end', [math.nan])[0], '.1f')}: the 2 cores are shared with other test runs, "
        "so absolute figures are pessimistic; ratios are measured in one run.",
        "",
    ]
    e2e = result.get("e2e")
    if e2e:
        tg = e2e.get("targets", {})
        lines += ["## End to end (embedded Tansu + Redis, one worker)", ""]
        lines += [
            "| target (issue #4) | measured | met |",
            "| --- | ---: | :---: |",
            f"| ≥ 2,000 events/s sustained | {_f(tg.get('events_per_s', {}).get('measured'))} | "
            f"{'yes' if tg.get('events_per_s', {}).get('met') else 'no'} |",
            f"| p99 < 250 ms at 1,000 events/s | {_f(tg.get('p99_ms_at_1000', {}).get('measured'))} ms | "
            f"{'yes' if tg.get('p99_ms_at_1000', {}).get('met') else 'no'} |",
            "",
            f"Worker as configured, consumer `{_fetch_label(e2e)}` ({e2e['config']['n_items']:,}-item catalogue, "
            f"{e2e['config']['n_users']:,} users):",
            "",
            *_load_rows(e2e),
            "",
            *_saturation_rows(e2e),
            "",
        ]
        tl = e2e.get("timeline")
        if tl:
            lines += [
                f"Stalls at {tl['offered_per_s']} events/s (worker events/s every {tl['tick_s']} s): "
                f"{tl['zero_share']:.0%} of ticks processed nothing while events waited; "
                f"bursts every {_f(tl['stall_period_s'], '.2f')} s.",
                "",
            ]
    patch = result.get("e2e_fetch_compare")
    if patch:
        lines += [
            f"### Same loads with the worker's consumer at `{_fetch_label(patch)}`",
            "",
            *_load_rows(patch),
            "",
            *_saturation_rows(patch),
            "",
        ]
        tl = patch.get("timeline")
        if tl:
            lines += [f"Stalls at {tl['offered_per_s']} events/s: {tl['zero_share']:.0%} of ticks idle.", ""]
    if e2e or patch:
        lines += ["## Where the time goes", "", *_where(result), ""]
    for name in ("latency_vs_load",):
        if name in plots:
            lines += [f"![latency vs load]({plots[name]})", ""]
    model = result.get("model")
    if model and model.get("runs"):
        lines += ["## Model path: eager torch vs onnxruntime (same artifact)", ""]
        dev = model.get("machine", {}).get("runner_device", "cpu")
        lines += [
            f"Session tower (d=128, 2 layers, L=50) + scoring + mask + top-20, runner on `{dev}`. "
            "Speed-up = eager ms / onnxruntime ms (fp32 `session.onnx`); int8 = `session_int8.onnx` "
            "(int8 candidates, exact fp32 re-score; what the worker runs on a CPU), onnx ms / int8 ms.",
            "",
            "| items | batch | eager ms | onnx ms | speed-up | int8 ms | int8 vs fp32 | eager sessions/s "
            "| onnx sessions/s | runner sessions/s |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in model["runs"]:
            lines.append(
                f"| {r['items']:,} | {r['batch']} | {_f(r['eager_ms'], '.1f')} | {_f(r['onnx_ms'], '.1f')} "
                f"| {_f(r['speedup'], '.2f')}× | {_f(r.get('onnx_int8_ms', math.nan), '.1f')} "
                f"| {_f(r.get('int8_speedup', math.nan), '.2f')}× | {_f(r['eager_events_per_s'])} "
                f"| {_f(r['onnx_events_per_s'])} | {_f(r['runner_events_per_s'])} |"
            )
        lines.append("")
        if "throughput_vs_catalogue" in plots:
            lines += [f"![throughput vs catalogue]({plots['throughput_vs_catalogue']})", ""]
    scaling = result.get("scaling")
    if scaling:
        lines += ["## Scaling: state per user and users", ""]
        lines += [
            "| events in session | items kept | ids kept | changelog JSON bytes | Python bytes (memory store) |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for s in scaling["state_per_user"]:
            lines.append(
                f"| {s['events_in_session']} | {s['items_kept']} | {s['ids_kept']} | {s['json_bytes']:,} "
                f"| {_f(s['python_bytes'])} |"
            )
        lines += [
            "",
            "| users in the table | state (RSS) MB | bytes/user | session path events/s | µs/event |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for u in scaling["users"]:
            lines.append(
                f"| {u['users']:,} | {_f(u['state_rss_mb'])} | {_f(u['bytes_per_user'])} "
                f"| {_f(u['session_path_events_per_s'])} | {_f(u['session_path_us_per_event'], '.1f')} |"
            )
        lines += [
            "",
            "Sessions prefilled with 10 events each; the session path is validate → table get → apply → "
            "to_value → put (no scoring, no broker). Item matrix memory is items × 128 × 4 bytes "
            "(51 MB at 100k, 512 MB at 1M).",
            "",
        ]
    return "\n".join(lines) + "\n"


def _where(result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    e2e = result.get("e2e") or {}
    patch = result.get("e2e_fetch_compare") or {}
    for r in (e2e, patch):
        label = _fetch_label(r)
        for row in r.get("loads", []):
            if "profile" in row:
                lines += _profile_rows(f"{label}, {row['offered_per_s']:,} events/s offered", row["profile"])
        sat = r.get("saturation") or {}
        if "profile" in sat:
            lines += _profile_rows(f"{label}, saturation (backlog draining)", sat["profile"])
    lines += diagnosis(result)
    return lines


def diagnosis(result: dict[str, Any]) -> list[str]:
    """The consume-path stall, with this run's before/after figures when both were measured."""
    runs = [r for r in (result.get("e2e"), result.get("e2e_fetch_compare")) if r and r.get("loads")]
    runs.sort(key=lambda r: -int(r.get("worker_fetch_max_wait_ms", 1500)))  # slow fetch (before) first
    e2e, patch = [*runs, {}, {}][:2]
    tl = e2e.get("timeline") or {}
    lines = [
        "**The stall.** faust 0.15.3 builds the worker's aiokafka consumer with a hard-coded "
        "`fetch_max_wait_ms=1500` (`faust/transport/drivers/aiokafka.py`, `_create_worker_consumer`), and "
        "the Tansu broker holds every fetch for about half of `fetch_max_wait_ms` even when records are "
        "waiting (it ignores `fetch_min_bytes=1`; the same halving as its group joins). Measured with a bare "
        "aiokafka consumer at 200 events/s, 4 partitions: fetch_max_wait_ms 1500 → a fetch with data every "
        "754 ms, p50 386 / p99 753 ms; 500 → 253 ms, p50 133 / p99 256; 100 → 53 ms, p50 33 / p99 74; "
        "20 → 12 ms, p50 11 / p99 27. So the worker receives its events in bursts every ~0.75 s "
        f"({_f(tl.get('zero_share'), '.0%')} of 0.25 s ticks idle in this run at "
        f"{_fetch_label(e2e)}) and half the burst period "
        "is added to every event's latency before the worker even sees it. Apache Kafka answers a fetch "
        "as soon as `fetch_min_bytes` are there, so production brokers do not show this.",
        "",
    ]
    if patch.get("loads") and e2e.get("loads"):
        before = {r["offered_per_s"]: r for r in e2e["loads"]}
        rows = ["| offered/s | p50 before → after ms | p99 before → after ms | achieved/s before → after |"]
        rows.append("| ---: | ---: | ---: | ---: |")
        for r in patch["loads"]:
            b = before.get(r["offered_per_s"])
            if b is None:
                continue
            rows.append(
                f"| {r['offered_per_s']:,} | {_f(b['latency_ms']['p50'])} → {_f(r['latency_ms']['p50'])} "
                f"| {_f(b['latency_ms']['p99'])} → {_f(r['latency_ms']['p99'])} "
                f"| {_f(b['events_per_s'])} → {_f(r['events_per_s'])} |"
            )
        lines += [f"Before/after: `{_fetch_label(e2e)}` → `{_fetch_label(patch)}` (this run):", "", *rows, ""]
    lines += [
        "**Fix**: a `WorkerSettings.fetch_max_wait_ms` applied where faust creates the consumer "
        "(`streams/faust_glue.py` sets `consumer._fetch_max_wait_ms` on the consumer "
        "`_create_worker_consumer` returns; it is read when the consumer starts its Fetcher). "
        "`streamrec bench --fetch-compare-ms MS` runs the e2e part again at another value "
        "(`STREAMREC_WORKER__FETCH_MAX_WAIT_MS`, or a patch of the worker child for workers without "
        "the setting). Past the stall, "
        "the remaining cost at saturation is the onnxruntime call on the scoring thread and per-event "
        "Python on the event loop (faust stream + validation + session), which share 2 cores.",
        "",
    ]
    return lines
