"""Child process for the trainer-restart test: the real online trainer (settings from STREAMREC_*
env, as ``streamrec trainer`` reads them) that appends, at each promotion, the examples the promoted
version newly learned from to a JSON-lines file (one list of :func:`example_key` per promotion,
flushed before the trainer commits its offsets). Killed by the test, never stopped by itself.

Usage: ``python -m support.trainer_witness_child INIT_MODEL_DIR WITNESS_FILE`` (cwd = tests/).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

from streamrec.config import Settings
from streamrec.encoder.online import Row
from streamrec.trainer.process import TrainerProcess
from support.trainer_harness import example_key


def main() -> None:
    init_model, witness = Path(sys.argv[1]), Path(sys.argv[2])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    proc = TrainerProcess(Settings(), init_model, threading.Event())
    promoted = proc.learner.promoted

    def witnessed() -> list[Row]:
        learned = promoted()
        ids = proc.learner.trained.item_ids
        with witness.open("a") as f:
            f.write(json.dumps([example_key([ids[i] for i in r.prefix], ids[r.target]) for r in learned]) + "\n")
        return learned

    proc.learner.promoted = witnessed  # type: ignore[method-assign]
    print(f"SERVED {proc.served.version}", flush=True)
    proc.run()


if __name__ == "__main__":
    main()
