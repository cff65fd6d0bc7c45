"""Dockerfiles parsed without a Docker engine: instructions, ARG defaults, stages."""

from __future__ import annotations

import re
from pathlib import Path

Instruction = tuple[str, str]  # (INSTRUCTION, arguments)


def instructions(path: Path) -> list[Instruction]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def arg_defaults(instrs: list[Instruction]) -> dict[str, str]:
    return dict(rest.split("=", 1) for op, rest in instrs if op == "ARG" and "=" in rest)


def stages(instrs: list[Instruction]) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for op, rest in instrs:
        if op == "FROM":
            out.append([])
        if out:
            out[-1].append((op, rest))
    return out


def expand(text: str, args: dict[str, str]) -> str:
    """``${NAME}`` replaced by the ARG default."""
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)
