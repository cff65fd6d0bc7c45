"""Where the worker's time goes: py-spy samples of the running worker, folded into stages.

``py-spy record --raw --threads --idle`` gives one line per distinct stack with its sample
count; each stack is put in the first stage (searched from the leaf up) whose marker it holds,
so a Redis call made from the pipeline counts as Redis, not as "pipeline". Idle samples
(a thread blocked in ``select``/``epoll``/a lock) are their own stage per thread, because for
the event-loop thread "idle" means "waiting for the broker to answer a fetch".

py-spy is optional (``pip install py-spy``); without it the profile is skipped and says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

# (stage, markers): a frame matches when one marker is a substring of "function (file:line)".
# Searched leaf -> root per stage in this order, first match wins.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("encode + top-K (onnxruntime)", ("run_with_iobinding", "serving/runner.py")),
    ("sessions -> item rows", ("encode_sessions", "item_index.py")),
    ("Redis feed write", ("write_feeds", "feed_sink.py", "redis/")),
    ("commit offsets", ("commit (", "_commit", "commit_offsets")),
    ("training batch", ("streams/training.py", "training_batch.py")),
    ("validate", ("validate_bytes", "contracts/events.py")),
    ("session table (get/put, changelog)", ("streams/session.py", "faust_glue.py", "faust/tables", "faust/stores")),
    ("batch pipeline (Python glue)", ("streams/pipeline.py",)),
    ("consume (aiokafka fetch, faust stream)", ("aiokafka/", "faust/streams", "faust/transport", "faust/channels")),
    ("metrics/health pages", ("prometheus_client", "aiohttp/", "streams/web.py", "streams/health.py")),
)
IDLE_LEAVES = ("select (", "poll (", "wait (threading", "_worker (concurrent", "get (queue", "acquire", "sleep (")


def py_spy() -> str | None:
    return shutil.which("py-spy")


def record(pid: int, seconds: float, rate: int = 200) -> str | None:
    """Raw folded stacks of ``pid`` for ``seconds``; None when py-spy is missing or fails."""
    exe = py_spy()
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.txt"
        argv = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
        argv += ["--format", "raw", "--threads", "--idle", "--nonblocking", "--output", str(out)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
        if proc.returncode != 0 or not out.exists():
            return None
        return out.read_text()


_THREAD = re.compile(r"^(?:process \d+:\"[^\"]*\";)?thread \((?:0x)?[0-9a-fA-F]+\)(?:: ([^;]*))?;?")


def classify(stack: list[str]) -> str:
    for frame in reversed(stack):
        for stage, markers in STAGES:
            if any(m in frame for m in markers):
                return stage
    return "other Python"


def thread_group(name: str) -> str:
    """``scoring_0`` -> ``scoring``; faust's consumer runs in its own thread and event loop."""
    name = re.sub(r"[_-]\d+( \(.*\))?$", "", name.strip())
    names = {"MainThread": "event loop (main thread)", "Thread": "faust consumer thread", "asyncio": "asyncio pool"}
    return names.get(name, name or "?")


def fold(raw: str) -> dict[str, Any]:
    """Stage shares per thread (grouped by thread name) from py-spy's raw output."""
    per_thread: dict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.splitlines():
        line = line.strip()
        stacks, _, count_s = line.rpartition(" ")
        if not stacks or not count_s.isdigit():
            continue
        m = _THREAD.match(stacks)
        thread = thread_group(m.group(1) or "?") if m else "?"
        frames = [f for f in (stacks[m.end() :] if m else stacks).split(";") if f]
        if not frames:
            continue
        stage = classify(frames)
        if any(x in frames[-1] for x in IDLE_LEAVES):
            stage = "idle (waiting)"
        per_thread[thread][stage] += int(count_s)
    threads: dict[str, Any] = {}
    for name, counts in sorted(per_thread.items(), key=lambda kv: -sum(kv[1].values())):
        total = sum(counts.values())
        busy = sum(v for k, v in counts.items() if not k.startswith("idle"))
        threads[name] = {
            "samples": total,
            "busy_share": busy / total,
            "stages": {k: v / total for k, v in counts.most_common()},
        }
    return {"threads": threads}


def profile_worker(pid: int, seconds: float) -> dict[str, Any]:
    raw = record(pid, seconds)
    if raw is None:
        return {"skipped": "py-spy not installed or could not attach (pip install py-spy; needs ptrace)"}
    return {"seconds": seconds, **fold(raw)}
