"""Artifact layout (docs/contracts.md, "Artifact"): file names, ``meta.json``, checksums, verification.

An artifact is a directory ``<version>/`` of immutable files. ``meta.json`` holds the sha256 of
every other file, and the artifact's own digest is the sha256 of ``meta.json``: that one value
(announced on ``streamrec.models``) pins every byte, so a reader that checks it and then each
file's hash can load nothing it was not told about. Verifying a 27 MB artifact (50k x 128
float32 items + 1.5 MB ONNX) costs ~30 ms of hashing; loading is rare, so it is always done.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SESSION_ONNX = "session.onnx"
SESSION_FP16_ONNX = "session_fp16.onnx"
SESSION_INT8_ONNX = "session_int8.onnx"
ITEMS_NPY = "items.npy"
ITEM_IDS_JSON = "item_ids.json"
TEXT_ONNX = "text.onnx"  # text -> item vector (serving/text_tower.py); in artifacts of models with text
# faiss IVF index over the item rows (serving/ann.py), in artifacts of serving.ann_min_items items or more
ANN_INDEX = "items.faiss"
TRAINED_ROWS_NPY = "trained_rows.npy"  # bool [N]: rows with a trained id embedding (never overwritten)
# The model directory (weights, config) packed as one tar, in versions a trainer may continue from
# (``streamrec retrain``'s); workers never read it.
MODEL_DIR_TAR = "model_dir.tar"
META_JSON = "meta.json"
REQUIRED_FILES = (SESSION_ONNX, ITEMS_NPY, ITEM_IDS_JSON)
FORMAT = 1


class ArtifactError(Exception):
    """An artifact is missing, incomplete, corrupt or fails parity; the message says which file and why."""


@dataclass(frozen=True)
class ArtifactMeta:
    """What ``meta.json`` holds. ``files`` maps each file name to its sha256."""

    version: str
    parent: str | None
    created: float
    k: int
    session_length: int
    d: int
    n_items: int
    files: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    text: dict[str, Any] = field(default_factory=dict)  # {"model": {"id", "sha256"}, "max_tokens"} with text.onnx
    format: int = FORMAT

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ArtifactMeta:
        obj = json.loads(raw)
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ArtifactError(f"meta.json is not an artifact of format {FORMAT}")
        try:
            return cls(**obj)
        except TypeError as exc:
            raise ArtifactError(f"meta.json has unexpected fields: {exc}") from None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_version(now: float | None = None) -> str:
    """Sortable, unique-enough version name: UTC time to the millisecond plus 4 random hex digits
    (two exports in the same millisecond on different pods must not collide: a rename onto an
    existing version is refused, never merged)."""
    t = time.time() if now is None else now
    return time.strftime("v%Y%m%dT%H%M%S", time.gmtime(t)) + f"{int(t * 1000) % 1000:03d}-{os.urandom(2).hex()}"


def write_file_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_items(directory: Path, item_ids: list[str], matrix: np.ndarray) -> None:
    """Write ``items.npy`` (float32 [N, d], C order) and ``item_ids.json`` (row order)."""
    if matrix.ndim != 2 or matrix.shape[0] != len(item_ids):
        raise ValueError(f"item matrix {matrix.shape} does not match {len(item_ids)} item ids")
    if len(set(item_ids)) != len(item_ids):
        raise ValueError("item ids are not unique")
    with (directory / ITEMS_NPY).open("wb") as f:
        np.save(f, np.ascontiguousarray(matrix, dtype=np.float32))
        f.flush()
        os.fsync(f.fileno())
    write_file_synced(directory / ITEM_IDS_JSON, json.dumps(item_ids).encode())


def seal(directory: Path, meta_fields: dict[str, Any]) -> ArtifactMeta:
    """Hash every file in ``directory`` and write ``meta.json`` last; returns the meta."""
    files = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != META_JSON}
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise ArtifactError(f"cannot seal {directory}: missing {', '.join(missing)}")
    meta = ArtifactMeta(files=files, **meta_fields)
    write_file_synced(directory / META_JSON, meta.to_json())
    return meta


def artifact_digest(directory: Path) -> str:
    """The artifact's one checksum: sha256 of its ``meta.json``."""
    return sha256_file(directory / META_JSON)


def verify(directory: Path, expected_digest: str | None = None) -> ArtifactMeta:
    """Check that ``directory`` is a complete, unmodified artifact and return its meta.

    Raises :class:`ArtifactError` naming the first bad file: missing, truncated or changed
    (sha256 mismatch), an extra file not listed in meta, or a meta whose digest is not the
    announced one.
    """
    meta_path = directory / META_JSON
    if not directory.is_dir():
        raise ArtifactError(f"artifact {directory} does not exist")
    if not meta_path.is_file():
        raise ArtifactError(f"artifact {directory} has no {META_JSON} (incomplete or not an artifact)")
    raw = meta_path.read_bytes()
    if expected_digest is not None and sha256_bytes(raw) != expected_digest:
        raise ArtifactError(
            f"artifact {directory}: {META_JSON} sha256 {sha256_bytes(raw)[:12]} != {expected_digest[:12]}"
        )
    try:
        meta = ArtifactMeta.from_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"artifact {directory}: {META_JSON} is not valid JSON ({exc})") from None
    for name in REQUIRED_FILES:
        if name not in meta.files:
            raise ArtifactError(f"artifact {directory}: {META_JSON} does not list required file {name}")
    for name, digest in meta.files.items():
        path = directory / name
        if not path.is_file():
            raise ArtifactError(f"artifact {directory}: file {name} is missing")
        actual = sha256_file(path)
        if actual != digest:
            raise ArtifactError(
                f"artifact {directory}: file {name} is corrupt or truncated "
                f"({path.stat().st_size} bytes, sha256 {actual[:12]} != {digest[:12]})"
            )
    extra = sorted(p.name for p in directory.iterdir() if p.name != META_JSON and p.name not in meta.files)
    if extra:
        raise ArtifactError(f"artifact {directory}: unexpected file(s) {', '.join(extra)} not covered by checksums")
    return meta


def load_items(directory: Path, meta: ArtifactMeta) -> tuple[list[str], np.ndarray]:
    """Item ids (row order) and matrix of a verified artifact, checked against the meta's shape."""
    item_ids = json.loads((directory / ITEM_IDS_JSON).read_bytes())
    matrix = np.load(directory / ITEMS_NPY, allow_pickle=False)
    if matrix.dtype != np.float32 or matrix.shape != (meta.n_items, meta.d) or len(item_ids) != meta.n_items:
        raise ArtifactError(
            f"artifact {directory}: items {matrix.dtype}{matrix.shape} / {len(item_ids)} ids "
            f"do not match meta ({meta.n_items}, {meta.d})"
        )
    return item_ids, matrix


def load_trained_rows(directory: Path, meta: ArtifactMeta) -> np.ndarray | None:
    """``trained_rows.npy`` of a verified artifact (bool [n_items]), None where it has none."""
    if TRAINED_ROWS_NPY not in meta.files:
        return None
    rows = np.load(directory / TRAINED_ROWS_NPY, allow_pickle=False)
    if rows.dtype != np.bool_ or rows.shape != (meta.n_items,):
        raise ArtifactError(
            f"artifact {directory}: {TRAINED_ROWS_NPY} is {rows.dtype}{rows.shape}, not bool[{meta.n_items}]"
        )
    return rows
