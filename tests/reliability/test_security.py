"""Issue #9, item 9: Redis with AUTH and an ACL user confined to the feed namespace; secrets come
only from the environment and are never logged; hostile user ids cannot make a feed key outside
the feed namespace. Broker SASL: the bundled Tansu cannot be given a TLS listener (its CLI
refuses ``--cert`` together with ``--key``) and streamrec refuses SASL without TLS on purpose
(SASL_PLAINTEXT would send the password in clear), so SASL is exercised only as far as that
refusal here; the Kafka SASL_SSL setup is documented in docs/reliability.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from support.worker_harness import WorkerEnv, WorkerProcess, event, feeds, produce, wait_until

from streamrec.config import Settings
from streamrec.contracts.feed import feed_key
from streamrec.local.services import start_redis

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

ADMIN_PW = "admin-Pw-7f3a9c"  # distinctive strings, so a grep finds any copy of them
WORKER_PW = "worker-Pw-51e0d2"
SASL_PW = "sasl-Pw-c4b8e1"
SECRETS = (ADMIN_PW, WORKER_PW, SASL_PW)
HOSTILE_USERS = [
    "*",
    "a:b",
    "../../other",
    "x\r\nSET evil 1",
    "other-namespace:feed:x",
    "%2A",
    "ü ser",
    "{tag}",
]


def _acl_user(admin: redis.Redis, prefix: str) -> None:
    """The worker's Redis user: its own password, keys under the feed prefix only, no admin
    or dangerous commands."""
    admin.execute_command(
        "ACL", "SETUSER", "streamrec", "on", f">{WORKER_PW}", "resetkeys", f"~{prefix}*", "+@all", "-@dangerous"
    )


def _assert_no_secret(text: str, where: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert leaked == [], f"secret(s) {leaked} found in {where}"


def test_redis_acl_confines_the_worker_to_the_feed_namespace_and_ids_are_escaped(
    wenv: WorkerEnv, tmp_path: Path
) -> None:
    """Pass: Redis requires a password; the worker runs as an ACL user allowed only keys under
    its feed prefix; events of users with hostile ids (``*``, ``:``, ``../``, CR/LF with a
    Redis command, another namespace's prefix, a literal ``%2A``, non-ASCII, braces) all get
    feeds, each under exactly one key inside the prefix that reads back as that user; no other
    key exists; the same ACL user is refused a write outside the prefix (the confinement is
    real) and an unauthenticated client is refused everything."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = start_redis(redis_dir, password=ADMIN_PW)
    admin = redis.Redis.from_url(server.address)
    try:
        _acl_user(admin, wenv.feed_prefix)
        wenv.redis = f"redis://streamrec:{WORKER_PW}@127.0.0.1:{server.port}/0"
        msgs = [(u, event(i, u, f"item-{i}")) for i, u in enumerate(HOSTILE_USERS)]
        produce(wenv.broker, wenv.topics["events"], msgs)
        w = WorkerProcess(wenv, tmp_path / "worker.log").start()
        try:
            w.wait_ready()
            wait_until(
                lambda: all(f is not None for f in feeds(wenv.redis, wenv.feed_prefix, HOSTILE_USERS).values()),
                60,
                lambda: w.tail(),
            )
        finally:
            assert w.stop() == 0
        keys = sorted(k.decode() for k in admin.keys("*"))
        assert keys == sorted(feed_key(wenv.feed_prefix, u) for u in HOSTILE_USERS)
        assert all(k.startswith(wenv.feed_prefix) and "*" not in k and "\n" not in k for k in keys)
        got = feeds(wenv.redis, wenv.feed_prefix, HOSTILE_USERS)
        assert {u: f.user_id for u, f in got.items() if f is not None} == {u: u for u in HOSTILE_USERS}

        confined = redis.Redis.from_url(wenv.redis)
        with pytest.raises(redis.exceptions.NoPermissionError):
            confined.set("outside-the-namespace", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            confined.execute_command("FLUSHALL")
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=server.port).ping()
        assert admin.exists("outside-the-namespace") == 0
        _assert_no_secret(w.log_path.read_text(errors="replace"), "the worker log")
    finally:
        server.stop()


def test_secrets_from_env_are_never_logged(wenv: WorkerEnv, tmp_path: Path) -> None:
    """Pass: the Redis and SASL passwords are given only in the environment. None of them
    appears in: the log of a worker that runs and serves; the log of a worker whose Redis
    password is wrong (auth errors, readiness 503); the error output of ``streamrec worker``
    refusing SASL without TLS and of ``streamrec trainer`` refusing to start; nor in the repr
    of the settings object. The wrong-password worker never becomes ready."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = start_redis(redis_dir, password=ADMIN_PW)
    try:
        wenv.redis = server.address  # redis://:ADMIN_PW@...
        wenv.extra.update(
            {
                "STREAMREC_KAFKA_SECURITY__SASL_USERNAME": "streamrec",
                "STREAMREC_KAFKA_SECURITY__SASL_PASSWORD": SASL_PW,
                "STREAMREC_LOG_LEVEL": "DEBUG",
            }
        )
        produce(wenv.broker, wenv.topics["events"], [("u1", event(1, "u1", "item-1"))])
        ok = WorkerProcess(wenv, tmp_path / "worker-ok.log").start()
        try:
            ok.wait_ready()
            wait_until(lambda: feeds(wenv.redis, wenv.feed_prefix, ["u1"])["u1"] is not None, 60, lambda: ok.tail())
        finally:
            ok.stop()
        _assert_no_secret(ok.log_path.read_text(errors="replace"), "the log of a working worker")

        wenv.redis = f"redis://:{WORKER_PW}@127.0.0.1:{server.port}/0"  # wrong password
        bad = WorkerProcess(wenv, tmp_path / "worker-badpw.log").start()
        try:
            wait_until(lambda: bad.check_alive() or _answers(bad), 60, lambda: bad.tail())
            wait_until(lambda: bad.metric("streamrec_redis_errors_total") >= 1 or _probe_failed(bad), 30, bad.tail)
            assert bad.get("/readyz")[0] == 503
        finally:
            bad.stop(signal.SIGKILL)
        _assert_no_secret(bad.log_path.read_text(errors="replace"), "the log of a worker with a wrong password")

        env = {**wenv.env(), "STREAMREC_KAFKA_SECURITY__PROTOCOL": "SASL_PLAINTEXT"}
        refused = subprocess.run(
            [sys.executable, "-m", "streamrec.cli", "worker"], env=env, capture_output=True, text=True, timeout=120
        )
        assert refused.returncode != 0 and "SASL_SSL" in refused.stdout + refused.stderr
        _assert_no_secret(refused.stdout + refused.stderr, "streamrec worker's error output")

        trainer = subprocess.run(
            [sys.executable, "-m", "streamrec.cli", "trainer"],
            env={**wenv.env(), "STREAMREC_DATA_DIR": str(tmp_path / "empty")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert trainer.returncode != 0
        _assert_no_secret(trainer.stdout + trainer.stderr, "streamrec trainer's error output")

        os_env = {k: v for k, v in wenv.env().items() if k.startswith("STREAMREC_")}
        for k, v in os_env.items():
            os.environ[k] = v
        try:
            _assert_no_secret(repr(Settings()) + str(Settings()), "the settings repr")
        finally:
            for k in os_env:
                os.environ.pop(k, None)
    finally:
        server.stop()


def _answers(w: WorkerProcess) -> bool:
    try:
        return w.get("/readyz")[0] in (200, 503)
    except OSError:
        return False


def _probe_failed(w: WorkerProcess) -> bool:
    return "redis" in w.get("/readyz")[1].lower()
