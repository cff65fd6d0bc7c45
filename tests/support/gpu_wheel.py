"""The onnxruntime-gpu wheel that pyproject's ``[gpu]`` extra resolves to, on a CPU machine.

``make setup`` unpacks it beside the venv (``<venv>/onnxruntime-gpu``), not on the venv's path:
it installs the same ``onnxruntime`` module as the CPU wheel the tests run on. A venv built
with ``[gpu]`` instead has it installed; either is used.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIDE_DIR = Path(sys.prefix) / "onnxruntime-gpu"  # the Makefile's GPU_ORT
NAME = "onnxruntime-gpu"


def gpu_pin() -> str:
    """The ``onnxruntime-gpu`` requirement of pyproject's ``[gpu]`` extra."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return next(d for d in extras["gpu"] if d.startswith(NAME))


def gpu_distribution() -> tuple[importlib.metadata.Distribution, Path | None] | None:
    """(the distribution, the directory to prepend to PYTHONPATH or None when it is already the
    environment's ``onnxruntime``), None when neither place has it."""
    for path in (None, SIDE_DIR):
        where = {} if path is None else {"path": [str(path)]}
        dist = next(iter(importlib.metadata.distributions(name=NAME, **where)), None)
        if dist is not None:
            return dist, path
    return None


def gpu_env(path: Path | None) -> dict[str, str]:
    """The environment of a child process whose ``import onnxruntime`` is the GPU wheel."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(path), env.get("PYTHONPATH"))))
    return env


def stub_cuda_libs(out: Path, provider_lib: Path, driver: int = 13000, leave_out: str = "") -> Path:
    """Stand-ins for the CUDA libraries ``provider_lib`` links (empty shared objects with their
    sonames; ``libcuda.so.1`` reports one device and ``driver`` as its CUDA version), built with
    gcc into ``out`` for a child's LD_LIBRARY_PATH; ``leave_out`` names one not to build."""
    from streamrec.serving.elf import needed

    out.mkdir(parents=True, exist_ok=True)
    driver_c = (
        "int cuInit(unsigned flags) { return 0; }\n"
        "int cuDeviceGetCount(int *count) { *count = 1; return 0; }\n"
        f"int cuDriverGetVersion(int *version) {{ *version = {driver}; return 0; }}\n"
    )
    for soname in needed(provider_lib):
        if not soname.startswith("libcu") or soname == leave_out:
            continue
        source = out / f"{soname}.c"
        source.write_text(driver_c if soname == "libcuda.so.1" else "void streamrec_stub(void) {}\n")
        cmd = ["gcc", "-shared", "-fPIC", "-o", str(out / soname), f"-Wl,-soname,{soname}", str(source)]
        subprocess.run(cmd, check=True, capture_output=True)
    return out
