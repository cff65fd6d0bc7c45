"""The cross-pod registry against a real redis-server: publish, list, fetch on another "pod", prune,
and a corrupted value in Redis is refused."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.export_artifacts import build

from streamrec.local.services import wait_for_port
from streamrec.net import free_port
from streamrec.serving.artifact import ArtifactError
from streamrec.serving.redis_registry import RedisRegistry


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not on PATH")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_publish_on_one_pod_fetch_verified_on_another(redis_url: str, tmp_path: Path) -> None:
    trainer = RedisRegistry(redis_url, tmp_path / "trainer", prefix="t1")
    worker = RedisRegistry(redis_url, tmp_path / "worker", prefix="t1")
    refs = [build(trainer).ref for _ in range(3)]
    assert refs[0].uri.startswith(redis_url.split("/0")[0])
    assert [r.version for r in worker.list()] == [r.version for r in refs]
    path = worker.fetch(refs[-1].version, refs[-1].sha256)
    assert (path / "session.onnx").is_file()
    assert worker.prune(2) == [refs[0].version]
    with pytest.raises(ArtifactError, match="not in the registry"):
        worker.fetch(refs[0].version)


def test_corrupted_value_in_redis_is_refused(redis_url: str, tmp_path: Path) -> None:
    reg = RedisRegistry(redis_url, tmp_path / "a", prefix="t2")
    ref = build(reg).ref
    key = f"{{t2}}:v:{ref.version}"
    data = reg.client.hget(key, "session.onnx")
    reg.client.hset(key, "session.onnx", data[:-100])
    with pytest.raises(ArtifactError, match="truncated"):
        RedisRegistry(redis_url, tmp_path / "b", prefix="t2").fetch(ref.version)
    assert not (tmp_path / "b" / ref.version).exists()
