"""Each subcommand's --help lists the settings it reads (and only those); every setting is
described and read by some command; ``config show`` names each value's source and masks
secrets."""

from __future__ import annotations

import importlib
import json

import pytest

from streamrec.cli import COMMANDS, build_parser, main
from streamrec.config import Settings
from streamrec.settings.cli import ALL, flag_of, settings_fields, used_fields


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return capsys.readouterr().out


def test_feed_help_shows_what_feed_reads(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help("feed", capsys)
    assert "--redis" in text and "--feed-prefix" in text and "--log-level" in text
    assert "--encoder-lr" not in text and "--broker" not in text


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse %-formats each subcommand's one-line help: a literal % must not break ``--help``."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in COMMANDS) and "95% intervals" in text


def test_every_setting_is_described_and_read_by_a_named_command() -> None:
    named = set()
    for name in COMMANDS:
        uses = importlib.import_module(f"streamrec.commands.{name}").SETTINGS
        if ALL not in uses:
            named |= {flag_of(p) for p, _ in used_fields(uses)}
    for path, info in settings_fields(Settings):
        assert info.description, f"{'.'.join(path)} has no description"
        assert flag_of(path) in named, f"{flag_of(path)} is read by no command but demo/up/bench/config"


def test_config_show_sources_and_masks(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_K", "7")
    monkeypatch.setenv("STREAMREC_KAFKA_SECURITY__SASL_PASSWORD", "hunter2")
    argv = ["config", "show", "--json", "--redis", "redis://:pw123@h:6379/0", "--worker-batch-max-events", "9"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "pw123" not in out
    rows = json.loads(out)
    assert rows["k"] == {"value": "7", "source": "env STREAMREC_K", "env": "STREAMREC_K", "flag": "--k"}
    assert rows["redis"]["value"] == "redis://:****@h:6379/0" and rows["redis"]["source"] == "flag --redis"
    assert rows["kafka_security.sasl_password"]["value"] == "****"
    assert rows["worker.batch_max_events"]["source"] == "flag --worker-batch-max-events"
    assert rows["session_length"]["source"] == "default"


def test_config_show_changed_lists_only_what_was_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--changed", "--k", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].split()[:2] == ["k", "5"] and lines[0].endswith("flag --k")
