"""An artifact's text tower (``text.onnx``): item text -> unit item vector, with onnxruntime and
the ``tokenizers`` library (no torch, no transformers).

``text.onnx`` is the whole chain the offline model learned with: token ids + attention mask ->
the language model -> mean pooling -> L2 norm (output ``text_embedding`` [n, T], what the online
trainer stores per row) -> the item tower's text projection -> L2 norm (``item_vec`` [n, d], a
cold item's vector in the artifact's item space). The tokenizer is the text model's own
``tokenizer.json``, found through the artifact's :class:`~streamrec.text_models.TextModelRef`
(id + weights checksum); a missing or different text model fails the load of the artifact,
loudly, rather than switching cold start off.

The session of a given ``text.onnx`` (by checksum) is shared by the runners that ship it: the
exporter reuses the file while the projection is unchanged, so a worker that swaps versions every
few seconds holds one 90 MB language model, not one per version.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from streamrec.serving.artifact import TEXT_ONNX, ArtifactError, ArtifactMeta
from streamrec.serving.signature import session_options
from streamrec.text_models import TOKENIZER_FILE, TextModelError, locate, ref_from_config

log = logging.getLogger(__name__)

TEXT_INPUTS = ("input_ids", "attention_mask")
TEXT_OUTPUTS = ("text_embedding", "item_vec")
BATCH = 64
_SHARED = 2  # text.onnx sessions kept: the serving one and the one being swapped in
_sessions: OrderedDict[str, ort.InferenceSession] = OrderedDict()
_sessions_lock = threading.Lock()


def load_tokenizer(model_dir: Path, max_tokens: int) -> Any:
    """The text model's fast tokenizer, truncating to ``max_tokens`` and padding to the longest
    text of a batch, as the training side's ``transformers`` tokenizer does."""
    from tokenizers import Tokenizer

    path = model_dir / TOKENIZER_FILE
    if not path.is_file():
        raise TextModelError(f"text model directory {model_dir} has no {TOKENIZER_FILE}")
    tok = Tokenizer.from_file(str(path))
    pad = "[PAD]"
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        pad = str(json.loads(config.read_text()).get("pad_token") or pad)
    pad_id = tok.token_to_id(pad)
    tok.enable_truncation(max_tokens)
    tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)
    return tok


def _session(path: Path, digest: str, providers: Sequence[Any], options: ort.SessionOptions | None) -> Any:
    with _sessions_lock:
        if digest in _sessions:
            _sessions.move_to_end(digest)
            return _sessions[digest]
    session = ort.InferenceSession(str(path), options, providers=list(providers))
    with _sessions_lock:
        _sessions[digest] = session
        while len(_sessions) > _SHARED:
            _sessions.popitem(last=False)
    return session


class TextTower:
    """Texts -> (text-model embeddings float32 [n, T], item vectors float32 [n, d]). Thread-safe."""

    def __init__(self, session: Any, tokenizer: Any, max_tokens: int, model_dir: Path) -> None:
        self.session, self.tokenizer, self.max_tokens, self.model_dir = session, tokenizer, max_tokens, model_dir
        self.d = int(session.get_outputs()[1].shape[1])

    @classmethod
    def load(
        cls,
        path: Path,
        digest: str,
        spec: dict[str, Any],
        search_dirs: Sequence[Path] = (),
        providers: Sequence[Any] = ("CPUExecutionProvider",),
        options: ort.SessionOptions | None = None,
    ) -> TextTower:
        """``spec`` is the artifact meta's ``text`` entry (``{"model": ref, "max_tokens": n}``).
        Raises :class:`ArtifactError` naming the text model when it cannot be found."""
        try:
            ref = ref_from_config(spec.get("model"))
            if ref is None:
                raise TextModelError(f"{path.name} has no text model named in meta.json")
            model_dir = locate(ref, search_dirs)
            tokenizer = load_tokenizer(model_dir, int(spec.get("max_tokens", 64)))
        except TextModelError as exc:
            raise ArtifactError(f"artifact {path.parent}: {path.name} needs {exc}") from None
        try:
            session = _session(path, digest, providers, options)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ArtifactError(f"artifact {path.parent}: onnxruntime cannot load {path.name}: {exc}") from None
        names = tuple(i.name for i in session.get_inputs()), tuple(o.name for o in session.get_outputs())
        if names != (TEXT_INPUTS, TEXT_OUTPUTS):
            raise ArtifactError(f"artifact {path.parent}: {path.name} has inputs/outputs {names}")
        return cls(session, tokenizer, int(spec.get("max_tokens", 64)), model_dir)

    @classmethod
    def of_artifact(
        cls, directory: Path, meta: ArtifactMeta, search_dirs: Sequence[Path], providers: Sequence[Any], threads: int
    ) -> TextTower | None:
        """The tower of a verified artifact, None for one without ``text.onnx``."""
        if TEXT_ONNX not in meta.files:
            return None
        opts = session_options(threads)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # it runs now and then
        return cls.load(directory / TEXT_ONNX, meta.files[TEXT_ONNX], meta.text, search_dirs, providers, opts)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, int64 [n, t] (t = the longest text, at most max_tokens)."""
        enc = self.tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in enc], np.int64)
        mask = np.asarray([e.attention_mask for e in enc], np.int64)
        return ids, mask

    def embed(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Both outputs for ``texts`` (non-empty strings), in input order. Texts go through in
        batches of similar length, so a short title is not padded to the longest description."""
        n = len(texts)
        emb = np.zeros((n, int(self.session.get_outputs()[0].shape[1])), np.float32)
        vec = np.zeros((n, self.d), np.float32)
        order = sorted(range(n), key=lambda i: len(texts[i]))
        for start in range(0, n, BATCH):
            rows = order[start : start + BATCH]
            ids, mask = self.tokenize([texts[i] for i in rows])
            out_emb, out_vec = self.session.run(list(TEXT_OUTPUTS), {"input_ids": ids, "attention_mask": mask})
            emb[rows], vec[rows] = out_emb, out_vec
        return emb, vec

    def warm_up(self) -> None:
        """One text through the chain: unit vectors of the right width, or ArtifactError."""
        _, vec = self.embed(["warm-up text"])
        if vec.shape != (1, self.d) or not np.isfinite(vec).all() or abs(float(np.linalg.norm(vec)) - 1.0) > 1e-3:
            raise ArtifactError(f"text tower warm-up produced {vec.shape} / non-unit vectors")
