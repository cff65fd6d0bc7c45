"""onnxruntime execution-provider choice from ``settings.device`` (auto | cuda | cpu).

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` as available even on a machine with no GPU
(measured here: 1.31 on a CPU-only box), and a session asked for CUDA there silently falls
back to CPU. So the choice asks the driver first (``cuDeviceGetCount`` through ``libcuda``, no
torch needed) and the runner checks the providers the session really got; every fallback is
logged with its reason.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from typing import Any, Literal

import onnxruntime as ort

log = logging.getLogger(__name__)

Device = Literal["auto", "cuda", "cpu"]
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"


@dataclass(frozen=True)
class ProviderChoice:
    """Providers to pass to ``InferenceSession`` (first = preferred) and the device the runner
    binds tensors on; ``reason`` says why (shown in logs and ``streamrec export``)."""

    providers: list[Any]
    device: Literal["cuda", "cpu"]
    reason: str


def cuda_device_count() -> tuple[int, str]:
    """Number of CUDA devices the driver reports, and why 0 when it is 0."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no NVIDIA driver (libcuda.so.1 not found)"
    if lib.cuInit(0) != 0:
        return 0, "NVIDIA driver present but cuInit failed (no usable GPU)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "NVIDIA driver reports no CUDA device"
    return count.value, f"{count.value} CUDA device(s)"


def choose_providers(
    device: Device,
    *,
    tensorrt: bool = False,
    available: list[str] | None = None,
    gpu_probe: tuple[int, str] | None = None,
    device_id: int = 0,
) -> ProviderChoice:
    """Pick providers for ``device``. ``available`` and ``gpu_probe`` default to the real
    onnxruntime build and driver (tests inject them). CUDA requested but unusable falls back to
    CPU with a warning (``cuda``) or an info line (``auto``), so a worker scheduled on the wrong
    node keeps serving instead of crash-looping."""
    if device == "cpu":
        return ProviderChoice([CPU], "cpu", "device=cpu")
    available = ort.get_available_providers() if available is None else available
    if CUDA not in available:
        reason = f"device={device} but this onnxruntime build has no CUDA provider (has {', '.join(available)})"
        return _fallback(device, reason)
    count, why = cuda_device_count() if gpu_probe is None else gpu_probe
    if count == 0:
        return _fallback(device, f"device={device} but {why}")
    cuda_opts = {"device_id": device_id, "arena_extend_strategy": "kSameAsRequested"}
    providers: list[Any] = [(CUDA, cuda_opts), CPU]
    reason = f"device={device}: {why}, using CUDA"
    if tensorrt and TENSORRT in available:
        providers.insert(0, (TENSORRT, {"device_id": device_id, "trt_fp16_enable": True}))
        reason += " with TensorRT first"
    return ProviderChoice(providers, "cuda", reason)


def _fallback(device: Device, reason: str) -> ProviderChoice:
    reason += "; falling back to CPU"
    (log.warning if device == "cuda" else log.info)(reason)
    return ProviderChoice([CPU], "cpu", reason)
