"""onnxruntime execution-provider choice from ``settings.device`` (auto | cuda | cpu).

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` as available even on a machine with no GPU
(measured here: 1.31 on a CPU-only box), and a session asked for CUDA there silently falls
back to CPU. The same happens where the GPU is fine but the CUDA libraries the provider links
are missing or of another major (1.31 links ``libcudart.so.13``; a CUDA 12 image has ``.so.12``).
So before any session the choice asks the driver (``cuDeviceGetCount`` through ``libcuda``, no
torch needed) and loads the CUDA libraries the provider links, which names a missing one; the
runner then checks the providers its session really got.

``cuda`` with any of that missing is a :class:`DeviceError` (a one-line start-up failure: a
pod on the wrong node or image must not quietly serve from the CPU);
``auto`` falls back to CPU and says why (the log, and the reason the worker's
``streamrec_worker_provider_info`` metric carries).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import onnxruntime as ort

from streamrec.errors import UserError
from streamrec.serving.elf import needed

log = logging.getLogger(__name__)

Device = Literal["auto", "cuda", "cpu"]
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
CUDA_PROVIDER_LIB = "libonnxruntime_providers_cuda.so"


class DeviceError(UserError):
    """``device=cuda`` asked for, and this process cannot run onnxruntime (or torch) on CUDA."""


@dataclass(frozen=True)
class ProviderChoice:
    """Providers to pass to ``InferenceSession`` (first = preferred) and the device the runner
    binds tensors on; ``reason`` says why (shown in logs, ``streamrec export`` and the worker's
    provider metric)."""

    providers: list[Any]
    device: Literal["cuda", "cpu"]
    reason: str

    @property
    def provider(self) -> str:
        """Name of the preferred provider (``CUDAExecutionProvider``, ...)."""
        first = self.providers[0]
        return first[0] if isinstance(first, tuple) else first


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


def cuda_driver_version() -> int | None:
    """The CUDA version the NVIDIA driver supports (13000 = 13.0), None without a driver."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None
    version = ctypes.c_int(0)
    return version.value if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 else None


@functools.cache
def cuda_provider_load_error() -> str | None:
    """Why onnxruntime's CUDA provider cannot load in this process, None when it can.

    The provider library itself is not loaded here: outside onnxruntime's provider bridge its
    static initialisers crash the process (:mod:`streamrec.serving.elf`). The CUDA libraries
    it links are, by the names the dynamic loader will look for, after the ones pip installed
    (torch's ``nvidia-*`` wheels) are preloaded (``onnxruntime.preload_dlls``, whose complaints
    are dropped: the load below names the library that counts), so a machine with only the
    driver and those wheels passes as well as a CUDA image does. The driver must support the
    CUDA major the provider links. Cached: the answer does not change within a process."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
            preload()
    path = Path(ort.__file__).parent / "capi" / CUDA_PROVIDER_LIB
    try:
        libs = [lib for lib in needed(path) if lib.startswith("libcu")]  # cudart, cublas(Lt), curand, cuda
    except (OSError, ValueError) as exc:
        return f"{CUDA_PROVIDER_LIB} is unreadable ({exc})"
    for lib in libs:
        try:
            ctypes.CDLL(lib)
        except OSError as exc:
            return f"{CUDA_PROVIDER_LIB} cannot load: {exc}"  # "libcudart.so.13: cannot open shared object file"
    major = next((int(lib.rsplit(".", 1)[1]) for lib in libs if lib.startswith("libcudart.so.")), None)
    driver = cuda_driver_version()
    if major is not None and driver is not None and driver // 1000 < major:
        supports = f"{driver // 1000}.{driver % 1000 // 10}"
        return f"the NVIDIA driver supports CUDA {supports}, {CUDA_PROVIDER_LIB} links CUDA {major}"
    return None


def cuda_problem(
    available: list[str] | None = None,
    gpu_probe: tuple[int, str] | None = None,
    provider_load: Callable[[], str | None] = cuda_provider_load_error,
) -> tuple[str | None, int, str]:
    """(why onnxruntime cannot run on CUDA here or None, CUDA devices, what the driver said).
    ``available`` and ``gpu_probe`` default to the real onnxruntime build and driver;
    ``provider_load`` checks the libraries the CUDA provider links (tests inject all three)."""
    available = ort.get_available_providers() if available is None else available
    if CUDA not in available:
        has = ", ".join(available)
        return f"this onnxruntime build has no CUDA provider (has {has}; the GPU one is streamrec[gpu])", 0, ""
    count, why = cuda_device_count() if gpu_probe is None else gpu_probe
    if count == 0:
        return why, 0, why
    problem = provider_load()
    return (None if problem is None else f"{problem} (driver: {why})"), count, why


def choose_providers(
    device: Device,
    *,
    tensorrt: bool = False,
    available: list[str] | None = None,
    gpu_probe: tuple[int, str] | None = None,
    provider_load: Callable[[], str | None] = cuda_provider_load_error,
    device_id: int = 0,
) -> ProviderChoice:
    """Pick providers for ``device`` (``available``, ``gpu_probe``, ``provider_load``: see
    :func:`cuda_problem`). Raises :class:`DeviceError` for ``cuda`` when CUDA is unusable;
    ``auto`` then falls back to CPU with the reason logged."""
    if device == "cpu":
        return ProviderChoice([CPU], "cpu", "device=cpu")
    available = ort.get_available_providers() if available is None else available
    problem, gpus, why = cuda_problem(available, gpu_probe, provider_load)
    if problem is not None:
        return fallback(device, problem, gpu_present=gpus > 0)
    cuda_opts = {"device_id": device_id, "arena_extend_strategy": "kSameAsRequested"}
    providers: list[Any] = [(CUDA, cuda_opts), CPU]
    reason = f"device={device}: {why}, using CUDA"
    if tensorrt and TENSORRT in available:
        providers.insert(0, (TENSORRT, {"device_id": device_id, "trt_fp16_enable": True}))
        reason += " with TensorRT first"
    return ProviderChoice(providers, "cuda", reason)


def fallback(device: Device, problem: str, gpu_present: bool = False) -> ProviderChoice:
    """CPU for ``auto``, with the reason logged (a warning where a GPU is there but unusable,
    the silent slowdown; info on a machine without one); :class:`DeviceError` for ``cuda``."""
    if device == "cuda":
        raise DeviceError(f"device=cuda, but {problem}; device=auto would fall back to the CPU")
    reason = f"device={device} but {problem}; falling back to CPU"
    (log.warning if gpu_present else log.info)(reason)
    return ProviderChoice([CPU], "cpu", reason)
