"""Experiment arms: a user's arm is a stable function of (salt, user id), the arms' shares hold on
many users, and a bad experiment setting is one line naming the entry and the flag to fix."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.cli import build_parser
from streamrec.experiment import BUCKETS, NO_ARM, Assignment, control_arm, parse_arms
from streamrec.settings.cli import SettingsError, settings_from_args

SPEC = "online:45:latest,frozen:35:version=v0001,control:20:popularity"


def test_spec_parses_to_arms_with_policies() -> None:
    arms = parse_arms(SPEC)
    assert [(a.name, a.share, a.policy, a.pinned) for a in arms] == [
        ("online", 45.0, "latest", None),
        ("frozen", 35.0, "version=v0001", "v0001"),
        ("control", 20.0, "popularity", None),
    ]
    assert parse_arms("") == () and parse_arms("  ") == ()
    assert control_arm(arms) == "control"  # the popularity arm by default
    assert control_arm(parse_arms("a:50:latest,b:50:version=v1")) == "a"  # else the first
    assert control_arm(arms, "frozen") == "frozen" and control_arm((), "") == NO_ARM


def test_arm_of_a_user_is_stable_across_instances_and_pinned_to_the_hash() -> None:
    arms = parse_arms(SPEC)
    users = [f"user-{n}" for n in range(500)]
    first = [Assignment(arms, "s1").label_of(u) for u in users]
    assert first == [Assignment(arms, "s1").label_of(u) for u in users]
    # blake2b(salt NUL user), not Python's per-process hash: the value is the same in every process
    assert Assignment(arms, "streamrec").point("u1") == pytest.approx(0.26761260170332507, abs=1e-15)
    moved = sum(a != b for a, b in zip(first, (Assignment(arms, "s2").label_of(u) for u in users), strict=True))
    assert 150 < moved < 400  # a new salt reshuffles: 1 - (.45^2 + .35^2 + .2^2) = 62% expected to move


def test_shares_are_respected_on_many_users() -> None:
    arms = parse_arms("a:50:latest,b:30:popularity,c:15:version=v1,d:5:version=v2")
    assignment = Assignment(arms, "streamrec")
    n = 100_000
    seen = Counter(assignment.label_of(f"u{i}") for i in range(n))
    for arm in arms:
        # binomial sd at n = 100k is at most 0.16 points: 0.6 points is > 3.5 sd
        assert abs(seen[arm.name] / n - arm.share / 100) < 0.006, (arm.name, seen[arm.name])


def test_buckets_split_every_arm_evenly() -> None:
    arms = parse_arms("a:80:latest,b:20:popularity")
    assignment = Assignment(arms, "streamrec")
    cells = Counter((assignment.label_of(f"u{i}"), assignment.bucket(f"u{i}")) for i in range(100_000))
    for arm in arms:
        n = sum(v for (name, _), v in cells.items() if name == arm.name)
        shares = [cells[(arm.name, b)] / n for b in range(BUCKETS)]
        assert max(abs(x - 1 / BUCKETS) for x in shares) < 0.006  # the bucket does not depend on the arm


@given(st.text(max_size=40), st.text(min_size=1, max_size=20))
def test_every_user_gets_one_of_the_arms(user: str, salt: str) -> None:
    arms = parse_arms(SPEC)
    assert Assignment(arms, salt).arm_of(user) in arms
    assert Assignment((), salt).label_of(user) == NO_ARM


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--experiment-arms", "a:50:latest,b:40:popularity"],
            "experiment.arms (flag --experiment-arms, env "
            "STREAMREC_EXPERIMENT__ARMS): the arms' shares add up to 90, not 100",
        ),
        (["--experiment-arms", "a:50:latest,b:50"], "arm 'b:50' is not NAME:SHARE:POLICY"),
        (["--experiment-arms", "a:50:latest,b:50:newest"], "arm 'b': policy 'newest' is not latest, popularity"),
        (["--experiment-arms", "a:50:latest,a:50:popularity"], "arm 'a' is named twice"),
        (["--experiment-arms", "a:x:latest"], "arm 'a': share 'x' is not a number"),
        (["--experiment-arms", "a:0:latest,b:100:latest"], "arm 'a': share 0 must be above 0"),
        (["--experiment-arms", "a b:100:latest"], "arm name 'a b': use 1-64 letters"),
        (["--experiment-arms", "a:100:version="], "policy 'version=' is not latest"),
        (
            ["--experiment-arms", "a:50:latest,b:50:popularity", "--experiment-control", "c"],
            "experiment.control (flag --experiment-control, env STREAMREC_EXPERIMENT__CONTROL): control arm 'c' "
            "is not one of the arms (a, b)",
        ),
    ],
)
def test_bad_experiments_are_one_line_naming_the_setting(flags: list[str], expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        settings_from_args(build_parser().parse_args(["worker", *flags]))
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_no_experiment_by_default_and_env_sets_one(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings_from_args(build_parser().parse_args(["worker"]))
    assert s.experiment.parsed == () and s.experiment.control_name == NO_ARM
    monkeypatch.setenv("STREAMREC_EXPERIMENT__ARMS", SPEC)
    s = settings_from_args(build_parser().parse_args(["experiments", "report"]))
    assert [a.name for a in s.experiment.parsed] == ["online", "frozen", "control"]
    assert s.experiment.control_name == "control"
