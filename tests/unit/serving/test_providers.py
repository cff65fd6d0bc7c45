"""Provider choice from settings.device, with a logged reason for every CPU fallback."""

from __future__ import annotations

import logging

import pytest

from streamrec.serving.providers import CPU, CUDA, TENSORRT, choose_providers

ALL = [TENSORRT, CUDA, CPU]


def test_cpu_is_cpu() -> None:
    assert choose_providers("cpu").providers == [CPU]


@pytest.mark.parametrize("device,level", [("auto", logging.INFO), ("cuda", logging.WARNING)])
def test_no_gpu_falls_back_to_cpu_with_a_logged_reason(caplog, device: str, level: int) -> None:
    caplog.set_level(logging.INFO, logger="streamrec.serving.providers")
    choice = choose_providers(device, available=ALL, gpu_probe=(0, "no NVIDIA driver (libcuda.so.1 not found)"))
    assert choice.device == "cpu" and choice.providers == [CPU]
    [record] = caplog.records
    assert record.levelno == level and "libcuda" in record.getMessage() and "falling back to CPU" in record.message


def test_build_without_cuda_provider_falls_back(caplog) -> None:
    caplog.set_level(logging.INFO, logger="streamrec.serving.providers")
    choice = choose_providers("auto", available=[CPU], gpu_probe=(1, "1 CUDA device(s)"))
    assert choice.device == "cpu" and "no CUDA provider" in caplog.text


def test_gpu_present_selects_cuda_then_cpu_and_tensorrt_on_request() -> None:
    choice = choose_providers("auto", available=ALL, gpu_probe=(1, "1 CUDA device(s)"))
    assert choice.device == "cuda" and [p[0] if isinstance(p, tuple) else p for p in choice.providers] == [CUDA, CPU]
    trt = choose_providers("cuda", available=ALL, gpu_probe=(1, "1 CUDA device(s)"), tensorrt=True)
    assert trt.providers[0][0] == TENSORRT


def test_runner_on_this_machine_logs_its_choice(artifact, caplog) -> None:
    from streamrec.serving.runner import Runner

    caplog.set_level(logging.INFO)
    registry, result = artifact
    runner = Runner.load(registry.fetch(result.ref.version), "auto")
    assert runner.device in ("cpu", "cuda") and runner.choice.reason in caplog.text
