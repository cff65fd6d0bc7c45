"""The client-only install, measured: a fresh virtualenv, ``pip install streamrec`` with no
extra (from a copy of the source tree, so no build output lands in it), its size and what it
pulled in. ``python -m streamrec.bench.install_size --json bench/client_install.json``; the
client test (tests/integration/test_client_install.py) runs the same function."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "onnxruntime", "onnxruntime-gpu", "faust-streaming", "pyarrow", "transformers", "numpy")
TARGET_MB = 30.0
PIP = ("-m", "pip", "--disable-pip-version-check", "-q")


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def copy_source(dest: Path) -> Path:
    """pyproject, README and the package folders: what a wheel is built from."""
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in set(conf["tool"]["setuptools"]["package-dir"].values()):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def measure(workdir: Path) -> dict[str, Any]:
    """Install the core into a fresh venv under ``workdir``; sizes in MB (10^6 bytes)."""
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    before = _tree_bytes(site)  # pip itself (and setuptools on older Pythons)
    src = copy_source(Path(tempfile.mkdtemp(dir=workdir)))
    start = time.monotonic()
    subprocess.run([py, *PIP, "install", str(src)], check=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    seconds = time.monotonic() - start
    listed = subprocess.run(  # not -q: it silences the listing too
        [py, "-m", "pip", "--disable-pip-version-check", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    dists = sorted(d["name"].lower() for d in json.loads(listed.stdout))
    added = (_tree_bytes(site) - before) / 1e6
    return {
        "python": sys.version.split()[0],
        "site_packages_added_mb": round(added, 1),
        "target_mb": TARGET_MB,
        "met": added <= TARGET_MB,
        "install_seconds": round(seconds, 1),
        "distributions": dists,
        "heavy_present": [d for d in HEAVY if d in dists],
        "python_executable": py,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streamrec-client-") as tmp:
        result = measure(Path(tmp))
    result.pop("python_executable")
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
