"""`streamrec replay` against the real broker: a malformed row is reported with its line
and reason and dead-lettered; every other row is published keyed by user, in time order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamrec.cli import main
from streamrec.contracts.dead_letters import original_bytes
from streamrec.kafka import read_topic
from streamrec.local.services import EmbeddedServices

pytestmark = pytest.mark.integration


def test_replay_reports_bad_line_and_publishes_the_rest(
    services: EmbeddedServices, unique_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,ts,type\n"
        "u1,i1,1000,click\n"
        "u2,i2,990,view\n"
        "u1,i3,not-a-time,click\n"
        "u2,i4,1010,teleport\n"
        "u1,i5,1020,purchase\n"
    )
    topics = [f"--topics-{t}" for t in ("events", "dlq", "items", "training", "models", "erasures")]
    argv = ["replay", str(path), "--rate", "0", "--broker", services.broker]
    for flag in topics:
        argv += [flag, f"{unique_prefix}.{flag.removeprefix('--topics-')}"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"{path}:4: rejected: ts 'not-a-time' is neither epoch seconds nor ISO-8601" in err
    assert f"{path}:5: rejected: type 'teleport'" in err

    published = [json.loads(r.value) for r in read_topic(services.broker, f"{unique_prefix}.events", min_count=3)]
    assert [e["item_id"] for e in published if e["user_id"] == "u1"] == ["i1", "i5"]
    assert sorted(e["event_id"] for e in published) == ["events.csv:2", "events.csv:3", "events.csv:6"]
    dlq = [json.loads(r.value) for r in read_topic(services.broker, f"{unique_prefix}.dlq", min_count=2)]
    assert sorted(d["source"]["line"] for d in dlq) == [4, 5]
    assert all(json.loads(original_bytes(d))["user_id"] in ("u1", "u2") for d in dlq)


def test_replay_of_missing_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "nope.csv"), "--broker", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err
