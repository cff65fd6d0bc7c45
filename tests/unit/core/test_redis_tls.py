"""``redis_tls`` -> redis-py's TLS options (streamrec.feed_store.tls_options): what each verify
mode checks, and that TLS files given with a plain ``redis://`` URL are refused (a forgotten
``rediss://`` must not send feeds in clear). Bad files: tests/unit/commands/test_bad_inputs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.config import RedisTls
from streamrec.errors import UserError
from streamrec.feed_store import NO_TLS, tls_options

URL = "rediss://redis.example:6380/0"


MODES = [("full", "required", True), ("ca", "required", False), ("none", "none", False)]


@pytest.mark.parametrize(("verify", "reqs", "hostname"), MODES)
def test_each_verify_mode_maps_to_what_it_checks(verify: str, reqs: str, hostname: bool) -> None:
    opts = tls_options(URL, RedisTls(verify=verify))
    assert (opts["ssl_cert_reqs"], opts["ssl_check_hostname"]) == (reqs, hostname)
    assert opts["ssl_ca_certs"] is None  # the system CAs


def test_plain_urls_get_no_tls_and_refuse_tls_files(tmp_path: Path) -> None:
    assert tls_options("redis://127.0.0.1:6379/0", NO_TLS) == {}
    assert tls_options("unix:///run/redis.sock", NO_TLS) == {}
    with pytest.raises(UserError, match="not rediss://"):
        tls_options("redis://127.0.0.1:6379/0", RedisTls(ca_file=tmp_path / "ca.pem"))


def test_a_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="go together"):
        RedisTls(cert_file=Path("client.crt"))
