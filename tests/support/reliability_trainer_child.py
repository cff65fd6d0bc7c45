"""Child process for the trainer-crash test: the real online trainer (settings from STREAMREC_*
env, as ``streamrec trainer`` reads them) that SIGKILLs itself at one exact point of its
export/publish step, named by argv[2]:

* ``parity``: the ONNX graph is written in the registry's staging dir, parity check running;
* ``sealed``: the artifact is complete and sealed in staging, not yet published (renamed);
* ``published``: the version is in the registry, the trainer's lineage dir not yet renamed;
* ``announce``: lineage renamed, the version not yet announced on the models topic.

Usage: ``python -m support.reliability_trainer_child INIT_MODEL_DIR POINT`` (cwd = tests/).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import streamrec.export.exporter as exporter
import streamrec.trainer.process as trainer_process
from streamrec.config import Settings
from streamrec.trainer.process import TrainerProcess


def _die(point: str) -> None:
    print(f"CRASH-POINT {point}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def _after(fn: Any, point: str) -> Any:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        fn(*args, **kwargs)
        _die(point)

    return wrapped


def main() -> None:
    init_model, point = Path(sys.argv[1]), sys.argv[2]
    proc = TrainerProcess(Settings(), init_model, threading.Event())
    print(f"SERVED {proc.served.version}", flush=True)
    if point == "parity":
        exporter.check_parity = _after(exporter.check_parity, point)  # type: ignore[assignment]
    elif point == "sealed":
        exporter.seal = _after(exporter.seal, point)  # type: ignore[assignment]
    elif point == "published":
        proc.registry.publish = _after(proc.registry.publish, point)  # type: ignore[method-assign]
    elif point == "announce":
        trainer_process.send_announcement = lambda *_a, **_k: _die(point)  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown crash point {point}")
    proc.run()
    raise SystemExit("the trainer stopped without reaching the crash point")


if __name__ == "__main__":
    main()
