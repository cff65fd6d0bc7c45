"""The GPU image's one CUDA major: the base image of Dockerfile.gpu, its torch index and the
CUDA libraries that the ``[gpu]`` pin's onnxruntime-gpu links agree.

A mismatch builds fine and runs on the CPU: onnxruntime lists the CUDA provider, cannot load
it, and scores on the CPU (onnxruntime-gpu 1.31, which links ``libcudart.so.13``, on the CUDA
12.8 image did). The wheel's CUDA provider library is read with ``readelf -d``; the wheel is
the one ``make setup`` unpacks beside the venv (tests/support/gpu_wheel.py).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from support.dockerfile import arg_defaults, instructions
from support.gpu_wheel import gpu_distribution, gpu_pin

ROOT = Path(__file__).resolve().parents[2]
PROVIDER = "libonnxruntime_providers_cuda.so"
# what the CUDA provider cannot run without (cuDNN and cuFFT are loaded later, on demand)
CUDA_LIBS = ("libcudart", "libcublas", "libcublasLt")


def image_cuda_major() -> int:
    image = arg_defaults(instructions(ROOT / "Dockerfile.gpu"))["CUDA_IMAGE"]
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.\d+(\.\d+)?-cudnn-runtime-\S+", image)
    assert match, f"CUDA_IMAGE {image!r} is not an nvidia/cuda cudnn-runtime tag"
    return int(match.group(1))


def needed(library: Path) -> list[str]:
    """The DT_NEEDED entries of an ELF shared library."""
    out = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def test_torch_index_is_for_the_base_image_cuda_major() -> None:
    index = arg_defaults(instructions(ROOT / "Dockerfile.gpu"))["TORCH_INDEX"]
    match = re.fullmatch(r"https://download\.pytorch\.org/whl/cu(\d+)(\d)", index)
    assert match, f"TORCH_INDEX {index!r} is not a download.pytorch.org/whl/cuXYZ index"
    assert int(match.group(1)) == image_cuda_major(), f"{index} vs CUDA {image_cuda_major()} in CUDA_IMAGE"


def test_gpu_pin_stays_within_one_minor() -> None:
    """A resolver must not move the wheel to one that links another CUDA major unnoticed."""
    spec = Requirement(gpu_pin()).specifier
    assert any(s.operator == "<" for s in spec) and any(s.operator == ">=" for s in spec), str(spec)


def test_gpu_wheel_cuda_provider_links_the_base_image_cuda_major() -> None:
    found = gpu_distribution()
    if found is None:
        pytest.skip("onnxruntime-gpu is not installed here, nor unpacked beside the venv (make setup does that)")
    if shutil.which("readelf") is None:
        pytest.fail("readelf not found: install binutils (make setup does)")
    dist, _ = found
    assert Requirement(gpu_pin()).specifier.contains(dist.version), f"onnxruntime-gpu {dist.version} vs {gpu_pin()}"
    (lib,) = [dist.locate_file(f) for f in dist.files or () if f.name == PROVIDER]
    libs = needed(Path(str(lib)))
    majors = {}
    for name in CUDA_LIBS:
        (entry,) = [n for n in libs if re.fullmatch(rf"{name}\.so\.\d+", n)] or [None]
        assert entry is not None, f"{PROVIDER} of onnxruntime-gpu {dist.version} does not link {name}: {libs}"
        majors[entry] = int(entry.rsplit(".", 1)[1])
    want = image_cuda_major()
    assert set(majors.values()) == {want}, (
        f"onnxruntime-gpu {dist.version}'s CUDA provider links {sorted(majors)}, Dockerfile.gpu ships CUDA {want}"
    )
