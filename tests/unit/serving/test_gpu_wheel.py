"""The real onnxruntime-gpu wheel of ``[gpu]`` on this machine, which has no CUDA: the failure
the GPU image had (the CUDA provider listed, a library it links missing) is named at start.

The wheel is the one ``make setup`` unpacks beside the venv; each check runs in a child process
whose ``import onnxruntime`` is that wheel (tests/support/gpu_wheel.py). With gcc, stand-ins for
the CUDA libraries and the driver (empty libraries with the sonames the provider links) show the
check passing where they are all there, and naming the one that is not, or a driver too old for
the CUDA major. ``device=cuda`` makes the worker (onnxruntime) and the trainer (torch) exit 2 with
one line before they connect to anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import Distribution
from pathlib import Path
from typing import Any

import pytest
from support.gpu_wheel import gpu_distribution, gpu_env, stub_cuda_libs

from streamrec.serving.providers import CUDA_PROVIDER_LIB, cuda_device_count

PROBE = """
import json, logging, onnxruntime as ort
from streamrec.serving.providers import CUDA, DeviceError, choose_providers, cuda_provider_load_error
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
out = {"module": ort.__file__, "cuda_listed": CUDA in ort.get_available_providers()}
out["load_error"] = cuda_provider_load_error()
out["auto_on_a_gpu_node"] = choose_providers("auto", gpu_probe=(1, "1 CUDA device(s)")).reason
try:
    out["cuda"] = choose_providers("cuda").reason
except DeviceError as exc:
    out["cuda_error"] = str(exc)
print(json.dumps(out))
"""
# nothing listens there: a process that got past its device check would fail on the broker
NOWHERE = {
    "worker": ["--broker", "127.0.0.1:9", "--redis", "redis://127.0.0.1:9"],
    "trainer": ["--broker", "127.0.0.1:9"],
}
MISSING = rf"{re.escape(CUDA_PROVIDER_LIB)} cannot load: (lib\w+\.so\.\d+): cannot open shared object file"


@pytest.fixture(scope="module")
def gpu_wheel() -> tuple[Distribution, Path | None]:
    found = gpu_distribution()
    if found is None:
        pytest.skip("onnxruntime-gpu is not installed here, nor unpacked beside the venv (make setup does that)")
    if cuda_device_count()[0] > 0:
        pytest.skip("this machine has a GPU: these checks are of one without CUDA")
    return found


def provider_lib(dist: Distribution) -> Path:
    (lib,) = [dist.locate_file(f) for f in dist.files or () if f.name == CUDA_PROVIDER_LIB]
    return Path(str(lib))


def probe(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    got = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout), got.stderr


def test_without_cuda_the_first_missing_library_is_named(gpu_wheel) -> None:
    dist, path = gpu_wheel
    out, log = probe(gpu_env(path))
    assert out["cuda_listed"], "onnxruntime-gpu lists its CUDA provider on a machine without CUDA"
    assert Path(out["module"]).is_relative_to(Path(str(dist.locate_file(""))))
    assert re.match(MISSING, out["load_error"] or ""), out["load_error"]
    auto = out["auto_on_a_gpu_node"]
    assert out["load_error"] in auto and auto.endswith("falling back to CPU") and f"WARNING {auto}" in log
    assert out["cuda_error"] == (
        "device=cuda, but no NVIDIA driver (libcuda.so.1 not found); device=auto would fall back to the CPU"
    )


@pytest.fixture()
def stubs(gpu_wheel, tmp_path: Path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc to build the stand-in CUDA libraries")
    dist, path = gpu_wheel

    def env(**kw: Any) -> dict[str, str]:
        lib_dir = stub_cuda_libs(tmp_path / "cuda", provider_lib(dist), **kw)
        return gpu_env(path) | {"LD_LIBRARY_PATH": str(lib_dir)}

    return env


def test_with_every_library_the_provider_links_cuda_is_chosen(stubs) -> None:
    out, _ = probe(stubs())
    assert out["load_error"] is None and out["cuda"] == "device=cuda: 1 CUDA device(s), using CUDA"


def test_the_cuda_12_image_case_names_the_missing_cuda_13_library(stubs) -> None:
    """What the CUDA 12.8 image did to onnxruntime-gpu 1.31: a CUDA 13 library it links is not
    there (libcublas.so.13 here: this machine happens to have a CUDA 13 libcudart installed)."""
    out, _ = probe(stubs(leave_out="libcublas.so.13"))
    assert re.match(MISSING, out["load_error"]).group(1) == "libcublas.so.13"  # type: ignore[union-attr]
    assert out["cuda_error"].startswith(f"device=cuda, but {CUDA_PROVIDER_LIB} cannot load: libcublas.so.13: ")
    assert "(driver: 1 CUDA device(s))" in out["cuda_error"]


def test_a_driver_older_than_the_cuda_major_is_named(stubs) -> None:
    out, _ = probe(stubs(driver=12080))
    assert out["load_error"] == f"the NVIDIA driver supports CUDA 12.8, {CUDA_PROVIDER_LIB} links CUDA 13"


@pytest.mark.parametrize(
    "command,wheel",
    [("worker", "gpu"), ("trainer", "cpu")],  # onnxruntime-gpu without CUDA; a CPU torch (the CPU wheel: unit tests)
)
def test_device_cuda_without_cuda_exits_2_with_one_line(request, command: str, wheel: str) -> None:
    env = gpu_env(request.getfixturevalue("gpu_wheel")[1]) if wheel == "gpu" else dict(os.environ)
    streamrec = Path(sys.executable).with_name("streamrec")
    got = subprocess.run(
        [str(streamrec), command, "--device", "cuda", *NOWHERE[command]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = got.stderr.strip().splitlines()
    assert got.returncode == 2, got.stderr
    assert len(lines) == 1 and "Traceback" not in got.stderr, got.stderr
    assert lines[0].startswith(f"streamrec {command}: error: device=cuda, but "), lines[0]
