"""An experiment in a real worker (real broker, Redis, exported models): each user's feed in Redis
is what their arm's policy ranks (the announced version, a pinned one, the popularity control)
and names its arm and version; ``streamrec experiments report`` reads the worker's counters; a
pinned version the registry lacks stops the worker with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.worker_harness import (
    WorkerEnv,
    announce,
    build_artifact,
    event,
    expected_feed,
    feeds,
    produce,
    running_worker,
    wait_until,
)

from streamrec.experiment import Assignment, parse_arms
from streamrec.serving.runner import Runner

pytestmark = pytest.mark.integration


def test_each_user_is_served_by_their_arm_and_the_report_reads_it(wenv: WorkerEnv, tmp_path: Path) -> None:
    frozen = build_artifact(wenv.registry_dir, seed=0)
    latest = build_artifact(wenv.registry_dir, seed=1)
    spec = f"online:40:latest,frozen:30:version={frozen.version},control:30:popularity"
    wenv.extra = {"STREAMREC_EXPERIMENT__ARMS": spec, "STREAMREC_EXPERIMENT__SALT": "it"}
    assignment = Assignment(parse_arms(spec), "it")
    announce(wenv.broker, wenv.topics["models"], latest)
    runners = {v: Runner.load(wenv.registry_dir / v, "cpu") for v in (frozen.version, latest.version)}
    users = [f"u{i}" for i in range(30)]
    sessions = {u: [f"item-{(7 * n + 3 * i) % 200}" for n in range(3)] for i, u in enumerate(users)}
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        for n in range(3):  # one round at a time: each user's next event meets the feed of the last
            produce(
                wenv.broker,
                wenv.topics["events"],
                [(u, event(n * 100 + i, u, sessions[u][n])) for i, u in enumerate(users)],
            )

            def all_fed(n: int = n) -> bool:
                got = feeds(wenv.redis, wenv.feed_prefix, users)
                return all(f is not None and f.event_id == f"e{n * 100 + i}" for i, f in enumerate(got.values()))

            wait_until(all_fed, 60, lambda: f"feeds missing; log:\n{w.tail()}")
        version_of = {"online": latest.version, "frozen": frozen.version, "control": "popularity"}
        for user, feed in feeds(wenv.redis, wenv.feed_prefix, users).items():
            assert feed is not None
            arm = assignment.label_of(user)
            assert (feed.arm, feed.model_version) == (arm, version_of[arm])
            if arm == "control":  # most clicked first, none of the user's own
                assert (
                    feed.items
                    and not set(feed.items) & set(sessions[user])
                    and feed.scores == sorted(feed.scores)[::-1]
                )
            else:
                assert feed.items == expected_feed(runners[feed.model_version], sessions[user], ["click"] * 3)
        wait_until(lambda: w.metric("streamrec_live_events_with_feed_total") == 60, 20, "live counters")
        out = tmp_path / "report.json"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamrec.cli",
                "experiments",
                "report",
                "--metrics",
                w.url("/metrics"),
                "--json",
                out,
            ],
            capture_output=True,
            text=True,
            env=wenv.env(),
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(out.read_text())
        per_arm = {a["arm"]: a["events_with_feed"] for a in report["arms"]}
        expected = {arm: 2 * sum(assignment.label_of(u) == arm for u in users) for arm in version_of}
        assert per_arm == expected and report["control"] == "control"


def test_a_pinned_version_missing_from_the_registry_stops_the_worker(wenv: WorkerEnv, tmp_path: Path) -> None:
    announce(wenv.broker, wenv.topics["models"], build_artifact(wenv.registry_dir))
    wenv.extra = {"STREAMREC_EXPERIMENT__ARMS": "online:50:latest,frozen:50:version=no-such-version"}
    with running_worker(wenv, tmp_path / "worker.log") as w:
        assert w.proc is not None
        w.proc.wait(90)
        assert w.proc.returncode == 1
        assert "experiment version no-such-version (experiment.arms) could not be loaded" in w.tail(20_000)
