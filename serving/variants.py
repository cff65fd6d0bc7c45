"""Which serving file of an artifact runs where, and opening it.

An artifact ships ``session.onnx`` and, when exported with them, ``session_fp16.onnx`` (the GPU
variant: tower and scoring in fp16, ``registry.fp16``) and ``session_int8.onnx`` (the CPU
variant: int8 candidates, exact fp32 re-score, ``registry.int8``); the runner picks one per
device, so one setting serves both kinds of node.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort

from streamrec.serving.artifact import SESSION_FP16_ONNX, SESSION_INT8_ONNX, SESSION_ONNX, ArtifactError, ArtifactMeta
from streamrec.serving.providers import CUDA, Device, ProviderChoice, fallback

log = logging.getLogger(__name__)


def serving_file(
    meta: ArtifactMeta, device: str, *, fp16: bool = False, int8: bool = False, int8_min_items: int = 0
) -> tuple[str, str]:
    """Which serving variant of the artifact runs on ``device`` ("cuda" or "cpu"), and why not
    the one asked for ("" when it is): fp16 only on CUDA, int8 only on the CPU and from
    ``int8_min_items`` items, each only where the artifact has the file."""
    if fp16 and device == "cuda":
        return (SESSION_FP16_ONNX, "") if SESSION_FP16_ONNX in meta.files else (SESSION_ONNX, "fp16 variant absent")
    if int8 and device == "cpu":
        if SESSION_INT8_ONNX not in meta.files:
            return SESSION_ONNX, "int8 variant absent (exported before it existed or with int8 off)"
        if meta.n_items < int8_min_items:
            return SESSION_ONNX, f"{meta.n_items} items < int8_min_items={int8_min_items}"
        return SESSION_INT8_ONNX, ""
    if fp16:
        return SESSION_ONNX, "fp16 variant is for CUDA only"
    return SESSION_ONNX, "int8 variant is for the CPU only" if int8 else ""


def open_serving(
    directory: Path,
    meta: ArtifactMeta,
    device: Device,
    choice: ProviderChoice,
    opts: ort.SessionOptions,
    variants: dict,
) -> tuple[str, ort.InferenceSession, ProviderChoice]:
    """The serving file :func:`serving_file` picks for ``variants`` (its keyword arguments), opened on
    ``choice``; where CUDA was chosen but the session could not start on the GPU, the CPU variant on
    the CPU (``auto``) or a DeviceError (``device="cuda"``). Returns (file name, session, choice)."""
    name, why = serving_file(meta, choice.device, **variants)
    if why:
        log.info("%s: using %s", why, name)
    session = open_session(directory, name, opts, choice)
    if choice.device == "cuda" and CUDA not in session.get_providers():
        # the provider library loaded but the session could not start on the GPU (its error is in
        # onnxruntime's log): DeviceError for device=cuda, for auto the CPU variant on the CPU
        choice = fallback(device, f"the CUDA provider failed to initialise for {name}", gpu_present=True)
        if (cpu_name := serving_file(meta, "cpu", **variants)[0]) != name:
            name, session = cpu_name, open_session(directory, cpu_name, opts, choice)
    return name, session, choice


def open_session(directory: Path, name: str, opts: ort.SessionOptions, choice: ProviderChoice) -> ort.InferenceSession:
    """The onnxruntime session of ``name``; a file onnxruntime cannot load is an ArtifactError."""
    try:
        return ort.InferenceSession(str(directory / name), opts, providers=choice.providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ArtifactError(f"artifact {directory}: onnxruntime cannot load {name}: {exc}") from None
