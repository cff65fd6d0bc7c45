"""Provider choice from settings.device: ``cuda`` where CUDA is unusable is a one-line
DeviceError, ``auto`` falls back to the CPU with the reason logged, and a GPU whose CUDA
provider loads gets CUDA first. The driver, the build and the provider library are injected
here; tests/unit/serving/test_gpu_wheel.py runs the real onnxruntime-gpu wheel on this machine."""

from __future__ import annotations

import logging

import pytest

from streamrec.errors import UserError
from streamrec.serving.providers import CPU, CUDA, TENSORRT, DeviceError, choose_providers

ALL = [TENSORRT, CUDA, CPU]
NO_DRIVER = (0, "no NVIDIA driver (libcuda.so.1 not found)")
ONE_GPU = (1, "1 CUDA device(s)")
MISSING = "libonnxruntime_providers_cuda.so cannot load: libcudart.so.13: cannot open shared object file"


def loads() -> str | None:
    return None


def test_cpu_is_cpu() -> None:
    assert choose_providers("cpu").providers == [CPU]


def test_auto_without_a_gpu_falls_back_with_an_info_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="streamrec.serving.providers")
    choice = choose_providers("auto", available=ALL, gpu_probe=NO_DRIVER)
    assert choice.device == "cpu" and choice.providers == [CPU] and choice.provider == CPU
    [record] = caplog.records
    assert record.levelno == logging.INFO and "libcuda" in record.getMessage()
    assert choice.reason.endswith("falling back to CPU") and choice.reason == record.getMessage()


def test_auto_with_a_gpu_whose_provider_cannot_load_warns_and_names_the_library(caplog) -> None:
    caplog.set_level(logging.INFO, logger="streamrec.serving.providers")
    choice = choose_providers("auto", available=ALL, gpu_probe=ONE_GPU, provider_load=lambda: MISSING)
    assert choice.device == "cpu"
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "libcudart.so.13" in record.getMessage()


@pytest.mark.parametrize(
    "available,probe,load,why",
    [
        ([CPU], ONE_GPU, loads, "this onnxruntime build has no CUDA provider"),
        (ALL, NO_DRIVER, loads, "no NVIDIA driver (libcuda.so.1 not found)"),
        (ALL, ONE_GPU, lambda: MISSING, "libcudart.so.13: cannot open shared object file"),
    ],
    ids=["cpu-build", "no-driver", "provider-cannot-load"],
)
def test_cuda_where_cuda_is_unusable_is_a_one_line_device_error(available, probe, load, why: str) -> None:
    with pytest.raises(DeviceError) as err:
        choose_providers("cuda", available=available, gpu_probe=probe, provider_load=load)
    message = str(err.value)
    assert isinstance(err.value, UserError), "the CLI prints a UserError as one line and exits 2"
    assert message.startswith("device=cuda, but ") and why in message and "\n" not in message


def test_a_gpu_whose_provider_loads_selects_cuda_then_cpu_and_tensorrt_on_request() -> None:
    choice = choose_providers("auto", available=ALL, gpu_probe=ONE_GPU, provider_load=loads)
    assert choice.device == "cuda" and [p[0] if isinstance(p, tuple) else p for p in choice.providers] == [CUDA, CPU]
    assert choice.provider == CUDA
    trt = choose_providers("cuda", available=ALL, gpu_probe=ONE_GPU, provider_load=loads, tensorrt=True)
    assert trt.providers[0][0] == TENSORRT and trt.provider == TENSORRT


def test_runner_on_this_machine_logs_its_choice(artifact, caplog) -> None:
    from streamrec.serving.runner import Runner

    caplog.set_level(logging.INFO)
    registry, result = artifact
    runner = Runner.load(registry.fetch(result.ref.version), "auto")
    assert runner.device in ("cpu", "cuda") and runner.choice.reason in caplog.text
