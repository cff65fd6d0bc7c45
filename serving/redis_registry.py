"""Registry backend in Redis: works across Kubernetes pods with no shared filesystem.

Why Redis (serving/README.md has the comparison): every worker pod already reaches it for the
feeds, so it adds no service, credential or network policy; an artifact of the default model is
~27 MB (25.6 MB items at 50k x 128 float32 + ~1.5 MB ONNX), far below Redis's 512 MB value
limit, and ``keep=5`` versions cost ~135 MB of Redis memory. Kafka would need
``max.message.bytes`` raised past 27 MB on the broker (Tansu does not even enforce it) and
an S3-compatible store would be a new service for the demo.

Layout (one hash tag, so in Redis Cluster all keys share a slot and the publish script may
touch them together):
  ``{<prefix>}:v:<version>``       hash  file name -> bytes (meta.json included)
  ``{<prefix>}:index``             zset  version -> created (epoch s)
  ``{<prefix>}:staging:<uuid>``    hash  upload in progress, expires after ``STAGING_TTL_S``
Publishing uploads to a staging key and then renames it onto the version key in one Lua script
that refuses to overwrite: a reader's HGETALL sees no version or all of it. Fetched versions
are written to a local cache directory (temp + rename) and verified by checksum before use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from streamrec.config import RedisTls
from streamrec.feed_store import NO_TLS, redis_client
from streamrec.serving.artifact import META_JSON, ArtifactError, ArtifactMeta, sha256_bytes, verify
from streamrec.serving.registry import ArtifactRef, staging_dir

# An upload of ~27 MB takes well under a second on a LAN; an hour covers any slow link, and a
# publisher that dies mid-upload leaves nothing behind after it.
STAGING_TTL_S = 3600

# KEYS: staging, final, index. ARGV: version, created. Returns 1 if published, 0 if it existed.
PUBLISH_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PERSIST', KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""

# KEYS: index, then the version keys. ARGV: the versions. Removes index entries and data together.
DELETE_LUA = """
for i, v in ipairs(ARGV) do
  redis.call('ZREM', KEYS[1], v)
  redis.call('DEL', KEYS[i + 1])
end
return #ARGV
"""


def _public_url(url: str) -> str:
    """The URL without credentials, for announcements and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RedisRegistry:
    """Immutable versions stored as Redis hashes; see the module docstring for the layout."""

    def __init__(self, url: str, cache_dir: Path, prefix: str = "streamrec:registry", tls: RedisTls = NO_TLS) -> None:
        # 60 s timeouts: one HSET/HGETALL carries the whole 25 MB item matrix.
        self.client = redis_client(url, tls, socket_timeout=60)
        self.url = _public_url(url)
        self.cache_dir = Path(cache_dir)
        self._tag = "{" + prefix + "}"
        self._publish = self.client.register_script(PUBLISH_LUA)
        self._delete = self.client.register_script(DELETE_LUA)

    def _key(self, version: str) -> str:
        return f"{self._tag}:v:{version}"

    @property
    def _index(self) -> str:
        return f"{self._tag}:index"

    def uri(self, version: str) -> str:
        return f"{self.url}#{self._key(version)}"

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        return staging_dir(self.cache_dir)

    def publish(self, staging_dir: Path) -> ArtifactRef:
        meta = verify(staging_dir)
        files = {p.name: p.read_bytes() for p in staging_dir.iterdir() if p.is_file()}
        staging_key = f"{self._tag}:staging:{uuid.uuid4().hex}"
        pipe = self.client.pipeline(transaction=False)
        for name, data in files.items():
            pipe.hset(staging_key, name, data)
        pipe.expire(staging_key, STAGING_TTL_S)
        pipe.execute()
        if not self._publish(
            keys=[staging_key, self._key(meta.version), self._index], args=[meta.version, meta.created]
        ):
            raise ArtifactError(f"version {meta.version} already exists in {self.url}: artifacts are immutable")
        return ArtifactRef(
            meta.version,
            sha256_bytes(files[META_JSON]),
            self.uri(meta.version),
            meta.parent,
            meta.created,
            meta.metrics,
        )

    def list(self) -> list[ArtifactRef]:
        versions = [v.decode() for v in self.client.zrange(self._index, 0, -1)]
        pipe = self.client.pipeline(transaction=False)
        for v in versions:
            pipe.hget(self._key(v), META_JSON)
        refs = []
        for v, raw in zip(versions, pipe.execute(), strict=True):
            if raw is None:
                continue
            try:
                meta = ArtifactMeta.from_json(raw)
            except (ArtifactError, ValueError):
                continue
            refs.append(ArtifactRef(v, sha256_bytes(raw), self.uri(v), meta.parent, meta.created, meta.metrics))
        return sorted(refs, key=lambda r: (r.created, r.version))

    def fetch(self, version: str, expected_sha256: str | None = None) -> Path:
        final = self.cache_dir / version
        if final.is_dir():
            with contextlib.suppress(ArtifactError):
                verify(final, expected_sha256)
                return final
            shutil.rmtree(final, ignore_errors=True)  # a bad cached copy is fetched again
        files = self.client.hgetall(self._key(version))
        if not files:
            raise ArtifactError(f"version {version} is not in the registry at {self.url}")
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / f".fetch-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            for name, data in files.items():
                name = name.decode()
                if "/" in name or name.startswith("."):
                    raise ArtifactError(f"version {version}: refusing file name {name!r}")
                (tmp / name).write_bytes(data)
            verify(tmp, expected_sha256)
            with contextlib.suppress(OSError):  # another fetcher won the race; its copy is verified below
                os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        verify(final, expected_sha256)
        return final

    def prune(self, keep: int, protect: tuple[str, ...] = ()) -> list[str]:
        refs = self.list()
        doomed = [r.version for r in refs[: max(0, len(refs) - keep)] if r.version not in protect]
        if doomed:
            self._delete(keys=[self._index, *(self._key(v) for v in doomed)], args=doomed)
            for v in doomed:
                shutil.rmtree(self.cache_dir / v, ignore_errors=True)
        return doomed
