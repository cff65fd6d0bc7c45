"""``pip install streamrec`` with no extra is the client: a fresh venv (bench/install_size.py,
the same measurement as bench/client_install.json) has no torch, onnxruntime, faust or
pyarrow; the client imports and works there; the CLI lists every command and says which extra
a command needs instead of a traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamrec.bench.install_size import TARGET_MB, measure
from streamrec.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
CLIENT = """
import sys
from streamrec.feed_store import get_feed, redis_client
from streamrec.kafka import EventProducer
from streamrec.contracts.events import validate_obj
from streamrec.contracts.schemas import EVENT
assert validate_obj({"event_id": "e", "user_id": "u", "item_id": "i", "ts": 1}).user_id == "u"
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnxruntime", "faust", "pyarrow", "numpy")))
"""


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, Path]]:
    result = measure(tmp_path_factory.mktemp("client"))
    yield result, Path(result["python_executable"])


def test_core_install_is_small_and_light(core: tuple[dict, Path]) -> None:
    result, _ = core
    assert result["heavy_present"] == []
    assert result["site_packages_added_mb"] <= TARGET_MB, result


def test_the_client_imports_without_the_extras(core: tuple[dict, Path]) -> None:
    _, py = core
    out = subprocess.run([str(py), "-c", CLIENT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_cli_names_the_missing_extra(core: tuple[dict, Path]) -> None:
    _, py = core
    cli = str(py.parent / "streamrec")
    listing = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "worker" in listing.stdout and "feed" in listing.stdout, listing.stderr
    worker = subprocess.run([cli, "worker"], capture_output=True, text=True, timeout=60)
    assert worker.returncode == 2 and "Traceback" not in worker.stderr, worker.stderr
    assert "pip install 'streamrec[worker]'" in worker.stderr
    feed = subprocess.run(  # the client's own command works, and a dead Redis is one line
        [cli, "feed", "u", "--redis", f"redis://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60
    )
    assert feed.returncode == 1 and "does not answer" in feed.stderr and "Traceback" not in feed.stderr, feed.stderr
