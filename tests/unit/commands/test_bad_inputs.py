"""No traceback ever reaches the user: every subcommand, run as the console script runs it, with
a bad URL, a service that does not answer, a missing file or a bad model directory prints one
line naming the problem and exits 2 (fix the input) or 1 (a service is down).

The cases run concurrently (a Kafka client gives up on a dead broker only after ~20 s)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamrec.net import free_port

BAD_INPUT, SERVICE_DOWN = 2, 1
DEAD = f"127.0.0.1:{free_port()}"  # nothing listens there
EVENTS = "event_id,user_id,item_id,type,ts\n" + "".join(f"e{i},u{i % 3},i{i % 5},click,{1000 + i}\n" for i in range(30))

# name -> (argv after `streamrec`, expected exit code); {tmp} is the test's scratch directory
CASES: dict[str, tuple[list[str], int]] = {
    "feed-url-without-scheme": (["feed", "u", "--redis", "localhost:6379"], BAD_INPUT),
    "feed-redis-down": (["feed", "u", "--redis", f"redis://{DEAD}"], SERVICE_DOWN),
    "feed-unused-setting": (["feed", "u", "--encoder-lr", "3"], BAD_INPUT),
    "feed-unknown-flag": (["feed", "u", "--no-such-flag"], BAD_INPUT),
    "feed-tls-missing-ca": (
        ["feed", "u", "--redis", f"rediss://{DEAD}", "--redis-tls-ca-file", "{tmp}/missing.pem"],
        BAD_INPUT,
    ),
    "feed-tls-ca-not-pem": (["feed", "u", "--redis", f"rediss://{DEAD}", "--redis-tls-ca-file", "{tmp}/events.csv"], 2),
    "feed-tls-files-without-rediss": (
        ["feed", "u", "--redis", f"redis://{DEAD}", "--redis-tls-ca-file", "{tmp}/events.csv"],
        BAD_INPUT,
    ),
    "worker-tls-cert-without-key": (
        ["worker", "--redis", f"rediss://{DEAD}", "--redis-tls-cert-file", "{tmp}/events.csv"],
        BAD_INPUT,
    ),
    "worker-broker-url": (["worker", "--broker", "kafka://localhost:9092"], BAD_INPUT),
    "worker-broker-down": (["worker", "--broker", DEAD, "--redis", f"redis://{DEAD}"], SERVICE_DOWN),
    "worker-bad-port": (["worker", "--broker", "localhost:99999"], BAD_INPUT),
    "trainer-no-init-model": (["trainer", "--broker", DEAD, "--init-model", "{tmp}/missing"], BAD_INPUT),
    "api-redis-url": (["api", "--redis", "localhost:6379"], BAD_INPUT),
    "api-no-token": (["api", "--broker", DEAD, "--redis", f"redis://{DEAD}"], BAD_INPUT),
    "replay-missing-file": (["replay", "{tmp}/missing.csv", "--broker", DEAD], BAD_INPUT),
    "replay-broker-down": (["replay", "{tmp}/events.csv", "--broker", DEAD], SERVICE_DOWN),
    "models-registry-scheme": (["models", "list", "--registry-url", "s3://bucket/models"], BAD_INPUT),
    "models-announce-broker-down": (["models", "announce", "--broker", DEAD, "--registry-url", "{registry}"], 1),
    "experiments-worker-down": (["experiments", "report", "--metrics", f"http://{DEAD}/metrics"], SERVICE_DOWN),
    "experiments-url-without-scheme": (["experiments", "report", "--metrics", "localhost:6066"], BAD_INPUT),
    "experiments-bad-arms": (["experiments", "report", "--experiment-arms", "a:60:latest"], BAD_INPUT),
    "items-missing-file": (["items", "publish", "{tmp}/missing.csv", "--broker", DEAD], BAD_INPUT),
    "items-broker-down": (["items", "withdraw", "i1", "--broker", DEAD], SERVICE_DOWN),
    "users-delete-nobody": (["users", "delete", "--broker", DEAD], BAD_INPUT),
    "users-delete-broker-down": (["users", "delete", "u1", "--broker", DEAD], SERVICE_DOWN),
    "train-missing-events": (["train", "--events", "{tmp}/missing.csv", "--out", "{tmp}/m"], BAD_INPUT),
    "train-missing-items": (
        ["train", "--events", "{tmp}/events.csv", "--items", "{tmp}/missing.csv", "--out", "{tmp}/m"],
        BAD_INPUT,
    ),
    "train-bad-text-finetune": (
        ["train", "--events", "{tmp}/events.csv", "--out", "{tmp}/m", "--encoder-text-finetune", "last3"],
        BAD_INPUT,
    ),
    "retrain-no-broker": (["retrain"], BAD_INPUT),
    "retrain-missing-events": (["retrain", "--broker", DEAD, "--events", "{tmp}/missing.csv"], BAD_INPUT),
    "retrain-broker-down": (["retrain", "--broker", DEAD], SERVICE_DOWN),
    "retrain-registry-scheme": (["retrain", "--broker", DEAD, "--registry-url", "s3://bucket/models"], BAD_INPUT),
    "eval-bad-model-dir": (["eval", "--events", "{tmp}/events.csv", "--model", "{tmp}/empty"], BAD_INPUT),
    "eval-bad-mmr-lambda": (
        ["eval", "--events", "{tmp}/events.csv", "--model", "{tmp}/empty", "--mmr-lambda", "0.8,2"],
        BAD_INPUT,
    ),
    "export-missing-model": (["export", "--model", "{tmp}/missing"], BAD_INPUT),
    "export-bad-model-dir": (["export", "--model", "{tmp}/empty", "--out", "{tmp}/reg"], BAD_INPUT),
    "demo-missing-events": (["demo", "--events", "{tmp}/missing.csv", "--items", "{tmp}/missing.csv"], BAD_INPUT),
    "up-redis-url": (["up", "--redis", "localhost:6379"], BAD_INPUT),
    "up-services-down": (["up", "--services-only", "--broker", DEAD, "--redis", f"redis://{DEAD}"], SERVICE_DOWN),
    "bench-unknown-part": (["bench", "--only", "nope"], BAD_INPUT),
    "bench-bad-loads": (["bench", "--loads", "fast"], BAD_INPUT),
    "config-bad-value": (["config", "show", "--k", "zero"], BAD_INPUT),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, artifact: tuple) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("bad-inputs")
    (tmp / "events.csv").write_text(EVENTS)
    (tmp / "empty").mkdir()
    registry = str(artifact[0].root)
    env = {**os.environ, "STREAMREC_DATA_DIR": str(tmp / "data")}

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        argv = [a.format(tmp=tmp, registry=registry) for a in argv]
        return subprocess.run(
            [sys.executable, "-m", "streamrec.cli", *argv], capture_output=True, text=True, env=env, timeout=120
        )

    # The broker-down cases wait ~30 s each on kafka-python's bootstrap, idle: enough threads to overlap them.
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = dict(zip(CASES, pool.map(run, (argv for argv, _ in CASES.values())), strict=True))
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_and_the_exit_code(case: str, outcomes: dict[str, subprocess.CompletedProcess]) -> None:
    result = outcomes[case]
    code = CASES[case][1]
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == code, out
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamrec") and "error:" in line]
    assert len(errors) == 1, out


def test_every_subcommand_is_tried() -> None:
    from streamrec.cli import COMMANDS

    assert set(COMMANDS) <= {argv[0] for argv, _ in CASES.values()}
