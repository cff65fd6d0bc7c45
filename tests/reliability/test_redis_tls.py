"""Issue #20, item 5: Redis over TLS for real. A redis-server listening only on ``--tls-port``
with a certificate from a CA made in the test (openssl CLI) and client certificates required
(``--tls-auth-clients yes``); the worker is given ``rediss://`` plus ``redis_tls`` (CA file,
client cert and key, verify ``full``) and writes feeds; clients without the CA, without a client
certificate, or in plain text are refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis
from support.worker_harness import WorkerEnv, WorkerProcess, event, produce, wait_until

from streamrec.config import RedisTls
from streamrec.feed_store import get_feed, redis_client
from streamrec.local.services import find_redis_server, stop_process, track, wait_for_port
from streamrec.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.reliability]
USERS = [f"tls-u{i}" for i in range(20)]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(name: str, cn: str, san: str, cwd: Path) -> None:
    """``name``.key and ``name``.crt signed by ca.crt (an EC P-256 key)."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=cwd)  # fmt: skip
    (cwd / f"{name}.ext").write_text(f"basicConstraints=CA:FALSE\nsubjectAltName={san}\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)  # fmt: skip


def _pki(cwd: Path) -> Path:
    """A self-signed CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    cwd.mkdir()
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=streamrec-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=cwd)  # fmt: skip
    _issue("server", "localhost", "IP:127.0.0.1,DNS:localhost", cwd)
    _issue("client", "streamrec-worker", "DNS:streamrec-worker", cwd)
    return cwd


def _tls_redis(pki: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [find_redis_server(), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(pki / "server.crt"), "--tls-key-file", str(pki / "server.key"),
            "--tls-ca-cert-file", str(pki / "ca.crt"), "--tls-auth-clients", "yes",
            "--save", "", "--appendonly", "no", "--dir", str(workdir)]  # fmt: skip
    with (workdir / "redis.log").open("wb") as log:
        proc = track(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir))
    wait_for_port(port, proc, "redis-server (TLS)")
    return proc, port


def test_worker_writes_feeds_over_tls_and_clients_without_the_ca_are_refused(wenv: WorkerEnv, tmp_path: Path) -> None:
    """Pass: Debian's redis-server has TLS built in (it starts on --tls-port); the worker, given
    ``rediss://127.0.0.1:PORT/0`` with the test CA, its client certificate and key (verify
    ``full``: CA and the IP in the server certificate), becomes ready and writes every user's
    feed, read back over TLS; a client with the system CAs only (no test CA) fails certificate
    verification, a client with the CA but no client certificate is refused by the server, and
    a plain-text client on the TLS port gets no answer: all three raise ConnectionError."""
    pki = _pki(tmp_path / "pki")
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    proc, port = _tls_redis(pki, redis_dir)
    url = f"rediss://127.0.0.1:{port}/0"
    tls = RedisTls(ca_file=pki / "ca.crt", cert_file=pki / "client.crt", key_file=pki / "client.key")
    client = redis_client(url, tls)
    try:
        wenv.redis = url
        wenv.extra.update(
            {
                "STREAMREC_REDIS_TLS__CA_FILE": str(tls.ca_file),
                "STREAMREC_REDIS_TLS__CERT_FILE": str(tls.cert_file),
                "STREAMREC_REDIS_TLS__KEY_FILE": str(tls.key_file),
                "STREAMREC_REDIS_TLS__VERIFY": "full",
            }
        )
        msgs = [(u, event(i, u, f"item-{i}")) for i, u in enumerate(USERS)]
        produce(wenv.broker, wenv.topics["events"], msgs)
        w = WorkerProcess(wenv, tmp_path / "worker.log").start()
        try:
            w.wait_ready(120)
            wait_until(lambda: all(get_feed(client, u, wenv.feed_prefix) for u in USERS), 60, w.tail)
        finally:
            assert w.stop() == 0
        got = {u: get_feed(client, u, wenv.feed_prefix) for u in USERS}
        assert all(f is not None and f.user_id == u and f.items for u, f in got.items())

        refused = {
            "no CA": redis_client(url),
            "no client certificate": redis_client(url, RedisTls(ca_file=tls.ca_file)),
            "plain text": redis.Redis(host="127.0.0.1", port=port, socket_timeout=3, socket_connect_timeout=3),
        }
        errors = {}
        for why, other in refused.items():
            with pytest.raises(redis.exceptions.ConnectionError) as exc:
                other.ping()
            other.close()
            errors[why] = str(exc.value)
        print(errors)
        assert "certificate verify failed" in errors["no CA"].lower(), errors
    finally:
        client.close()
        stop_process(proc, 5)
