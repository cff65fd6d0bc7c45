"""The versioned model registry: interface, the local-directory backend, and ``open_registry``.

Every backend offers the same five operations: publish a sealed staging directory as a new
immutable version, list versions (oldest first), fetch a version to a verified local directory,
prune to the newest N, and describe where a version lives (``uri``) for the announcement on
``streamrec.models``. See serving/README.md for the choice of the cross-pod backend (Redis).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from streamrec.config import RedisTls
from streamrec.contracts.announcement import build_announcement
from streamrec.feed_store import NO_TLS
from streamrec.serving.artifact import META_JSON, ArtifactError, ArtifactMeta, artifact_digest, verify


@dataclass(frozen=True)
class ArtifactRef:
    """A published version: what goes into the ``streamrec.models`` announcement."""

    version: str
    sha256: str
    uri: str
    parent: str | None
    created: float
    metrics: dict

    def announcement(self) -> dict:
        return build_announcement(self.version, self.sha256, self.uri, self.parent, self.created, self.metrics)


@contextlib.contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A fresh hidden directory under ``parent`` to build one artifact in, removed afterwards
    (after a publish it is already renamed away); a crash leaves only a ``.staging-*`` that no
    listing shows."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".staging-{uuid.uuid4().hex}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _ref(meta: ArtifactMeta, digest: str, uri: str) -> ArtifactRef:
    return ArtifactRef(meta.version, digest, uri, meta.parent, meta.created, meta.metrics)


class Registry(Protocol):
    """What the exporter, the trainer and the worker need from a registry backend."""

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        """A fresh local directory to build an artifact in; removed on exit whatever happens."""
        ...

    def publish(self, staging_dir: Path) -> ArtifactRef:
        """Verify a sealed staging directory and make it a version, atomically. Refuses to overwrite."""
        ...

    def list(self) -> list[ArtifactRef]:
        """Complete versions, oldest first."""
        ...

    def fetch(self, version: str, expected_sha256: str | None = None) -> Path:
        """A local directory holding the version, verified (raises ArtifactError if it does not verify)."""
        ...

    def prune(self, keep: int, protect: tuple[str, ...] = ()) -> list[str]:
        """Delete all but the newest ``keep`` versions (never those in ``protect``); returns the deleted."""
        ...


class LocalRegistry:
    """Versions as directories ``<root>/<version>/`` on one filesystem (the embedded default).

    Publishing renames a staging directory built inside ``<root>`` (same filesystem, so
    ``os.rename`` is atomic): a reader sees either no version or all of it. Staging and trash
    directories start with a dot and are never listed. Shared across pods only if ``root`` is a
    shared volume, which streamrec does not assume; see :mod:`streamrec.serving.redis_registry`.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def staging(self) -> contextlib.AbstractContextManager[Path]:
        return staging_dir(self.root)

    def publish(self, staging_dir: Path) -> ArtifactRef:
        meta = verify(staging_dir)
        final = self.root / meta.version
        if final.exists():
            raise ArtifactError(f"version {meta.version} already exists in {self.root}: artifacts are immutable")
        if staging_dir.parent.resolve() != self.root.resolve():
            # Built elsewhere (another filesystem, maybe): copy next to the target first so the
            # final step is still one rename.
            tmp = self.root / f".staging-{uuid.uuid4().hex}"
            shutil.copytree(staging_dir, tmp)
            staging_dir = tmp
        os.rename(staging_dir, final)
        _fsync_dir(self.root)
        return _ref(meta, artifact_digest(final), str(final.resolve()))

    def list(self) -> list[ArtifactRef]:
        if not self.root.is_dir():
            return []
        refs = []
        for path in self.root.iterdir():
            if path.name.startswith(".") or not (path / META_JSON).is_file():
                continue
            try:
                meta = ArtifactMeta.from_json((path / META_JSON).read_bytes())
            except (ArtifactError, ValueError):
                continue  # listed only if readable; fetch() says why a version is bad
            refs.append(_ref(meta, artifact_digest(path), str(path.resolve())))
        return sorted(refs, key=lambda r: (r.created, r.version))

    def fetch(self, version: str, expected_sha256: str | None = None) -> Path:
        path = self.root / version
        verify(path, expected_sha256)
        return path

    def prune(self, keep: int, protect: tuple[str, ...] = ()) -> list[str]:
        refs = self.list()
        doomed = [r.version for r in refs[: max(0, len(refs) - keep)] if r.version not in protect]
        for version in doomed:
            # Rename out of the listing first so no reader ever lists a half-deleted version.
            trash = self.root / f".trash-{uuid.uuid4().hex}"
            os.rename(self.root / version, trash)
            shutil.rmtree(trash, ignore_errors=True)
        return doomed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_registry(url: str, data_dir: Path, tls: RedisTls = NO_TLS) -> Registry:
    """The registry a URL names: ``""`` -> ``<data_dir>/registry``; a path or ``file://`` URL -> a
    :class:`LocalRegistry`; ``redis://`` / ``rediss://`` -> a :class:`RedisRegistry` caching fetched
    versions under ``<data_dir>/registry-cache`` (``tls``: the settings' ``redis_tls``)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from streamrec.serving.redis_registry import RedisRegistry

        return RedisRegistry(url, cache_dir=Path(data_dir) / "registry-cache", tls=tls)
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" in url:
        raise ValueError(f"registry URL {url!r}: use a directory, file://PATH or redis://HOST:PORT/DB")
    return LocalRegistry(Path(url) if url else Path(data_dir) / "registry")
