"""The serving runtime the worker calls: :class:`Runner`, one loaded artifact.

A ``Runner`` is one verified artifact loaded into an onnxruntime session on the configured
device, warmed up, with its catalogue bound on that device once per catalogue version (IO
binding: on a GPU the 25.6 MB item matrix is not copied per call; only the B x L session rows
go in and B x K results come out). CPU and CUDA share this code path; only the device string of
the bound tensors differs (docs/architecture.md, invariant 5).

Swapping runners between batches is the worker's :class:`streamrec.streams.model_slot.ModelSlot`;
a runner is handed to it only after it has verified and warmed up, so the old one keeps serving
meanwhile and a bad artifact never replaces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from streamrec.cooccurrence import FILE_NAME as COOCCURRENCE_NPZ
from streamrec.explain import because_rows
from streamrec.serving.ann import AnnIndex, AnnScorer, SparseBonus
from streamrec.serving.artifact import (
    ANN_INDEX,
    SESSION_INT8_ONNX,
    SESSION_ONNX,
    TEXT_ONNX,
    ArtifactError,
    ArtifactMeta,
    load_items,
    load_trained_rows,
    verify,
)
from streamrec.serving.item_index import Catalogue, EncodedBatch, ItemIndex, encode_sessions
from streamrec.serving.providers import Device, ProviderChoice, choose_providers
from streamrec.serving.signature import check_signature, has_bonus, session_options
from streamrec.serving.text_tower import TextTower
from streamrec.serving.variants import open_serving
from streamrec.settings.serving import ServingSettings

log = logging.getLogger(__name__)

Recommendation = tuple[list[str], list[float]]
Explained = tuple[list[str], list[float], list[str]]  # + per item, the session item that explains it
# 256 sessions x 50k items is a 51 MB score matrix inside the graph: larger batches stop
# gaining throughput here and only add latency for the first session of the batch.
DEFAULT_MAX_BATCH = 256
_EXCLUDE_SEEN = {flag: ort.OrtValue.ortvalue_from_numpy(np.array(flag)) for flag in (True, False)}


class Runner:
    """One loaded artifact. Thread-safe: ``recommend`` may be called concurrently; catalogue
    updates publish a new snapshot that later batches see."""

    def __init__(
        self,
        directory: Path,
        meta: ArtifactMeta,
        session: ort.InferenceSession,
        index: ItemIndex,
        choice: ProviderChoice,
        file_name: str = SESSION_ONNX,
        text: TextTower | None = None,
        trained_rows: np.ndarray | None = None,
        ann: AnnScorer | None = None,
    ) -> None:
        self.directory, self.meta, self.session, self.choice = directory, meta, session, choice
        self.text = text  # the artifact's text tower (cold start from text), None without text.onnx
        self._trained = trained_rows  # bool [n_items]; None (older artifacts): every row is trained
        self.file_name = file_name  # which serving variant runs (session.onnx, session_int8.onnx, ...)
        self._index, self.ann = index, ann  # ann: the ANN index path (serving.ann), None = the graph alone
        self.max_batch = DEFAULT_MAX_BATCH
        self.takes_bonus = has_bonus(session)  # files exported before the hybrid serve the model alone

    @classmethod
    def load(
        cls,
        artifact_dir: Path | str,
        device: Device = "auto",
        *,
        expected_sha256: str | None = None,
        fp16: bool = False,
        int8: bool = False,
        int8_min_items: int = 0,
        tensorrt: bool = False,
        threads: int = 0,
        spinning: bool = True,
        warmup: bool = True,
        text_model_dirs: Sequence[Path] = (),
        ann: ServingSettings | None = None,
    ) -> Runner:
        """Verify checksums, open the session on ``device``, bind the catalogue, warm up.
        ``threads``: onnxruntime intra-op threads (0 = one per core); ``spinning``: let idle ones
        spin-wait (fastest when the cores are otherwise free). ``fp16`` serves the fp16 variant on
        CUDA, ``int8`` the int8-scoring variant on CPU, where the artifact has them (int8 only for
        catalogues of ``int8_min_items`` or more: on smaller ones the exact re-score of its
        candidates costs more than the int8 matmul saves). Raises :class:`ArtifactError` for
        anything wrong with the artifact or its text model (in ``text_model_dirs`` or the wheel),
        :class:`~streamrec.serving.providers.DeviceError` for ``device="cuda"`` where CUDA is unusable.
        ``ann``: serve through the artifact's ANN index from ``ann.ann_min_items`` items (never int8:
        the candidates are re-scored exactly anyway)."""
        directory = Path(artifact_dir)
        meta = verify(directory, expected_sha256)
        choice = choose_providers(device, tensorrt=tensorrt)
        use_ann = ann is not None and 0 < ann.ann_min_items <= meta.n_items and ANN_INDEX in meta.files
        variants = {"fp16": fp16, "int8": int8 and not use_ann, "int8_min_items": int8_min_items}
        opts = session_options(threads, spinning)
        name, session, choice = open_serving(directory, meta, device, choice, opts, variants)
        quantized = name == SESSION_INT8_ONNX
        if problem := check_signature(session, int8=quantized):
            raise ArtifactError(f"artifact {directory}: {name}: {problem}")
        index = ItemIndex(*load_items(directory, meta), choice.device, quantize=quantized)
        text = TextTower.of_artifact(directory, meta, text_model_dirs, choice.providers, threads)
        scorer = (
            AnnScorer(session, AnnIndex.load(directory / ANN_INDEX, meta), ann, meta.k) if use_ann and ann else None
        )
        runner = cls(directory, meta, session, index, choice, name, text, load_trained_rows(directory, meta), scorer)
        if warmup:
            runner.warm_up()
        via = f"{name} + {ANN_INDEX} ({scorer.index.lists} lists)" if scorer else name
        log.info("loaded %s from %s on %s (%s)", meta.version, via, choice.device, choice.reason)
        return runner

    @property
    def version(self) -> str:
        return self.meta.version

    @property
    def device(self) -> str:
        return self.choice.device

    @property
    def k(self) -> int:
        return self.meta.k

    @property
    def session_length(self) -> int:
        return self.meta.session_length

    @property
    def d(self) -> int:
        """Width of the item vectors (a zero vector of it: an item known only from events)."""
        return self.meta.d

    @property
    def config(self) -> dict[str, Any]:
        """The training config the artifact was exported with (``meta.json``)."""
        return self.meta.config

    @property
    def item_ids(self) -> list[str]:
        return self._index.current.ids

    @property
    def cooccurrence_file(self) -> Path | None:
        """The co-occurrence table the artifact ships (counted on its training log), if any."""
        return self.directory / COOCCURRENCE_NPZ if COOCCURRENCE_NPZ in self.meta.files else None

    def rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """Catalogue rows of ``ids`` (int64 [n], -1 for an id the catalogue lacks). Rows of known
        items never change within a runner (upserts append), so a mapping stays valid."""
        rows = self._index.current.rows
        return np.fromiter((rows.get(i, -1) for i in ids), np.int64, count=len(ids))

    @property
    def text_digest(self) -> str | None:
        """sha256 of ``text.onnx``: vectors it embedded are valid in every runner with this digest."""
        return self.meta.files.get(TEXT_ONNX)

    def trained(self, ids: Sequence[str]) -> list[bool]:
        """Per id: whether the artifact has a trained id-embedding row for it, which catalogue
        updates keep (:mod:`streamrec.item_refresh`); rows added since the load are not."""
        rows = self.rows_of(ids)
        if self._trained is None:
            return [0 <= r < self.meta.n_items for r in rows.tolist()]
        return [0 <= r < len(self._trained) and bool(self._trained[r]) for r in rows.tolist()]

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray | None:
        """Item vectors float32 [n, d] from ``texts`` (non-empty) by the artifact's text tower,
        None when the artifact has none. Blocking (it runs the language model)."""
        return None if self.text is None else self.text.embed(texts)[1]

    @property
    def unavailable(self) -> frozenset[str]:
        return self._index.unavailable

    def warm_up(self, batch_sizes: Sequence[int] = (1, 64)) -> float:
        """Run dummy batches (allocates arenas, picks kernels: the first CUDA call can take
        seconds) and check the outputs; returns the seconds spent. Raises ArtifactError if the
        model produces NaN or the wrong shapes, so a broken model never goes live."""
        t0 = time.perf_counter()
        cat = self._index.current
        n, session_length = len(cat.ids), self.meta.session_length
        rng = np.random.default_rng(0)
        for b in batch_sizes:
            items = rng.integers(0, n, size=(b, session_length), dtype=np.int64)
            mask = np.ones((b, session_length), np.bool_)
            mask[0, : session_length // 2] = False  # a left-padded session as well as full ones
            batch = EncodedBatch(
                items, rng.integers(1, 5, size=(b, session_length), dtype=np.int64), mask, list(range(b))
            )
            scores, indices = self._run(batch, cat, exclude_seen=True)
            if scores.shape != (b, self.meta.k) or indices.shape != (b, self.meta.k):
                raise ArtifactError(
                    f"artifact {self.directory}: warm-up output shape {scores.shape}, expected {(b, self.meta.k)}"
                )
            if np.isnan(scores).any():
                raise ArtifactError(f"artifact {self.directory}: warm-up produced NaN scores")
        if self.text is not None:
            self.text.warm_up()
        return time.perf_counter() - t0

    def _run(
        self, batch: EncodedBatch, cat: Catalogue, exclude_seen: bool, bonus: SparseBonus | None = None, k: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        # through the ANN index: ``k`` results (default K), not the graph's K
        if self.ann is not None:
            return self.ann.run(batch, cat, exclude_seen, bonus if self.takes_bonus else None, k or self.meta.k)
        binding = self.session.io_binding()
        binding.bind_cpu_input("session_items", batch.items)
        binding.bind_cpu_input("session_types", batch.types)
        binding.bind_cpu_input("session_mask", batch.mask)
        binding.bind_ortvalue_input("item_matrix", cat.matrix_value)
        binding.bind_ortvalue_input("item_bias", cat.bias_value)
        # An input with a default initializer binds only as an OrtValue (bind_cpu_input refuses it).
        binding.bind_ortvalue_input("exclude_seen", _EXCLUDE_SEEN[exclude_seen])
        if bonus is not None and self.takes_bonus:
            rows, values = bonus
            dev = self.choice.device
            binding.bind_ortvalue_input("bonus_rows", ort.OrtValue.ortvalue_from_numpy(np.maximum(rows, 0), dev))
            binding.bind_ortvalue_input("bonus_values", ort.OrtValue.ortvalue_from_numpy(values, dev))
        if cat.codes_value is not None and cat.scales_value is not None:  # the int8 variant
            binding.bind_ortvalue_input("item_codes", cat.codes_value)
            binding.bind_ortvalue_input("item_scales", cat.scales_value)
        binding.bind_output("top_scores", self.choice.device)
        binding.bind_output("top_indices", self.choice.device)
        self.session.run_with_iobinding(binding)
        scores, indices = binding.copy_outputs_to_cpu()
        return scores, indices

    def recommend(
        self,
        sessions: Sequence[Sequence[str]],
        types: Sequence[Sequence[str]],
        k: int | None = None,
        exclude_seen: bool = True,
        bonus: SparseBonus | None = None,
        explain: bool = False,
    ) -> list[Recommendation] | list[Explained]:
        """Top-``k`` (item ids, scores) per session, best first, in input order. ``k`` defaults to
        and may not exceed the artifact's K. Unavailable items never appear; seen items neither
        when ``exclude_seen``. A session with no known item gets ``([], [])``. ``bonus`` (one row
        per session, in catalogue rows) is added to the model's scores where the file takes it
        (:attr:`takes_bonus`; ignored otherwise); padding entries must carry value 0. ``explain``
        adds a third list per session, each item's ``because`` (:func:`streamrec.explain.because`:
        the session item the model read whose vector is closest), computed on the rows the batch
        was encoded to, so it costs no id lookups."""
        k = self.meta.k if k is None else k
        if not 1 <= k <= self.meta.k:
            raise ValueError(f"k={k}: this artifact was exported with K={self.meta.k} (re-export with --k)")
        cat = self._index.current  # one catalogue for the whole call
        out: list = [([], [], []) if explain else ([], []) for _ in sessions]
        for start in range(0, len(sessions), self.max_batch):
            stop = start + self.max_batch
            batch = encode_sessions(cat, sessions[start:stop], types[start:stop], self.meta.session_length, trim=True)
            if not batch.keep:
                continue
            part = None
            if bonus is not None:
                keep = np.asarray(batch.keep) + start
                part = (bonus[0][keep], bonus[1][keep])
            scores, indices = self._run(batch, cat, exclude_seen, part, k)
            why = because_rows(cat.matrix, batch.items, batch.mask, indices[:, :k]) if explain else None
            for row, n in enumerate(batch.keep):
                finite = np.isfinite(scores[row, :k])  # -inf = masked: fewer than k candidates left
                ranked = ([cat.ids[i] for i in indices[row, :k][finite]], scores[row, :k][finite].tolist())
                out[start + n] = ranked if why is None else (*ranked, [cat.ids[i] for i in why[row][finite]])
        return out

    def item_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors float32 [n, d] of ``ids`` in the current catalogue, in order (the worker's MMR
        re-rank of a top-K list). Raises KeyError for an id the catalogue does not hold."""
        cat = self._index.current  # one snapshot: rows and matrix of the same version
        return cat.matrix[[cat.rows[i] for i in ids]].reshape(len(ids), cat.matrix.shape[1])

    def upsert_items(self, ids: Sequence[str], vectors: np.ndarray) -> int:
        """Add cold-start items (or replace vectors) without re-export; returns how many were new.
        The ANN index takes them right after the catalogue (a batch in between misses them for once)."""
        new = self._index.upsert(ids, vectors)
        if self.ann is not None:
            self.ann.index.add(self.rows_of(ids), vectors)
        return new

    def set_available(self, ids: Sequence[str], flag: bool) -> None:
        self._index.set_available(ids, flag)
