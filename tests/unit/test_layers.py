"""The layers of docs/architecture.md, held over the real folders (an AST pass, no imports).

pyproject's ``package-dir`` maps the top-level folders to ``streamrec.*``; a tool that follows
paths sees no arrows between them, so this test reads every module's imports (top-level,
inside functions and under TYPE_CHECKING alike: each is a dependency) and checks:

1. no import points to a higher layer:
   contracts <- core (adapters, config) <- encoder / serving / export <- processes
   (streams, trainer) <- commands / local stack / bench;
2. within the library and process layers, packages import each other only as allowed
   (export builds from the encoder and writes what serving reads; the worker and the trainer
   never import each other);
3. serving, and everything it imports, never imports torch or transformers;
4. the worker never imports the torch export code (``streamrec.export``).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Longest matching prefix wins; the value is the layer (a module may import its own layer or lower).
LAYERS = {
    "streamrec.contracts": 0,
    "streamrec.errors": 0,
    "streamrec": 1,  # the core: adapters (kafka, feed_store, follow, datasets, ...), config, settings
    "streamrec.encoder": 2,
    "streamrec.serving": 2,
    "streamrec.export": 2,
    "streamrec.streams": 3,
    "streamrec.trainer": 3,
    "streamrec.api": 3,
    "streamrec.commands": 4,
    "streamrec.local": 4,
    "streamrec.cli": 4,
    "streamrec.bench": 4,
}
# Imports between different packages of the library and process layers that are allowed.
SIDEWAYS = {("streamrec.export", "streamrec.encoder"), ("streamrec.export", "streamrec.serving")}
SIDEWAYS_CHECKED = {2, 3}
NO_TORCH = ("torch", "transformers")


@cache
def package_dirs() -> dict[str, Path]:
    """Package -> folder, as pyproject installs them."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {pkg: ROOT / folder for pkg, folder in conf.items()}


@cache
def modules() -> dict[str, Path]:
    """Every module of the project by its installed name."""
    out: dict[str, Path] = {}
    for pkg, folder in package_dirs().items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((pkg, *parts))] = path
    return out


def imports_of(name: str, source: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for each import in ``source`` (``name``'s text)."""
    package = name if modules()[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield (full if full in modules() else base), node.lineno


@cache
def graph() -> dict[str, list[tuple[str, int]]]:
    return {name: list(imports_of(name, path.read_text())) for name, path in modules().items()}


def home(module: str) -> str:
    """The LAYERS key a module belongs to."""
    return max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)


def violations() -> list[str]:
    """Every import that breaks rule 1 or 2, as ``path:line: a -> b (why)``."""
    out = []
    for src, targets in graph().items():
        for dst, line in targets:
            if dst != "streamrec" and not dst.startswith("streamrec."):
                continue
            a, b = home(src), home(dst)
            where = f"{modules()[src].relative_to(ROOT)}:{line}: {src} -> {dst}"
            if LAYERS[b] > LAYERS[a]:
                out.append(f"{where} (layer {LAYERS[a]} imports layer {LAYERS[b]})")
            elif a != b and LAYERS[a] == LAYERS[b] in SIDEWAYS_CHECKED and (a, b) not in SIDEWAYS:
                out.append(f"{where} ({a} may not import {b})")
    return out


def closure(start: str) -> set[str]:
    """``start`` and every project module it imports, directly or not."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules():
            continue
        seen.add(name)
        todo.extend(dst for dst, _ in graph()[name])
    return seen


def test_the_mapping_covers_every_package_folder() -> None:
    assert {"streamrec.streams", "streamrec.trainer", "streamrec.api", "streamrec.serving", "streamrec.export"} <= set(
        package_dirs()
    )
    assert all(home(m) for m in modules())  # every module has a layer


def test_no_import_breaks_a_layer() -> None:
    assert violations() == []


def test_serving_never_imports_torch() -> None:
    serving = [m for m in modules() if home(m) == "streamrec.serving"]
    assert serving
    bad = [
        f"{modules()[m].relative_to(ROOT)}:{line}: {dst}"
        for s in serving
        for m in sorted(closure(s))
        for dst, line in graph()[m]
        if dst.split(".")[0] in NO_TORCH
    ]
    assert sorted(set(bad)) == []


def test_the_worker_never_imports_the_export_code() -> None:
    worker = [m for m in modules() if home(m) == "streamrec.streams"]
    reached = {m for w in worker for m in closure(w)}
    assert sorted(m for m in reached if home(m) == "streamrec.export") == []
