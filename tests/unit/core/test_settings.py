"""Settings: env vars and generated CLI flags reach every field; bad values are one line
naming the field, its flag and its env var."""

from __future__ import annotations

import pytest

from streamrec.cli import build_parser, main
from streamrec.config import Settings
from streamrec.settings.cli import SettingsError, settings_from_args


def _settings(argv: list[str]) -> Settings:
    return settings_from_args(build_parser().parse_args(argv))


def test_defaults_run_the_embedded_demo() -> None:
    s = Settings()
    assert s.broker == "" and s.redis == ""  # empty = start embedded services
    assert s.topics.events == "streamrec.events" and s.topics.dlq == "streamrec.events.dlq"
    assert s.device == "auto" and s.k == 20 and s.session_length == 50


def test_env_and_flags_override_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_WORKER__BATCH_MAX_EVENTS", "64")
    monkeypatch.setenv("STREAMREC_K", "7")
    s = _settings(["worker", "--k", "9", "--encoder-d-model", "32", "--topics-events", "x.events"])
    assert s.worker.batch_max_events == 64  # env
    assert s.k == 9  # flag beats env
    assert s.encoder.d_model == 32 and s.topics.events == "x.events"


def test_secrets_are_not_printed() -> None:
    s = _settings(["worker", "--kafka-security-sasl-password", "hunter2"])
    assert s.kafka_security.sasl_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--k", "0"], "k"),
        (["--device", "tpu"], "device"),
        (["--worker-batch-max-events", "lots"], "worker.batch_max_events"),
        (["--encoder-temperature", "-1"], "encoder.temperature"),
    ],
)
def test_bad_value_is_one_line_naming_the_field(argv: list[str], field: str) -> None:
    with pytest.raises(SettingsError) as exc:
        _settings(["worker", *argv])
    msg = str(exc.value)
    assert "\n" not in msg and field in msg and "STREAMREC_" in msg


def test_cli_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--device", "tpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("streamrec worker: error: invalid setting device") and "\n" not in err


def test_unknown_env_section_field_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_WORKER__BATCH_SIZE_TYPO", "3")
    with pytest.raises(SettingsError, match="worker"):
        _settings(["worker"])


def test_configuration_reference_is_up_to_date() -> None:
    from pathlib import Path

    from streamrec.settings.doc import settings_table

    doc = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    assert doc.read_text() == settings_table(), "regenerate: python -m streamrec.settings.doc > docs/configuration.md"


def test_the_candidate_pool_is_k_times_pool() -> None:
    assert Settings().pool_size == 80
    assert Settings(k=10, pool=3).pool_size == 30
