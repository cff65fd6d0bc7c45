"""Cold start from text, end to end on the embedded stack with the real MiniLM: a model trained
with it and exported (``text.onnx``) serves in a real worker; a catalogue record with text and no
vector is embedded by the worker (onnxruntime + tokenizers: no torch in the process) and the
item appears in the feed of a user whose session is about it. An artifact naming a text model
the worker does not have is refused loudly (load failure counted, a log line naming the model)
while the old version keeps serving."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support.text_artifact import K, MiniLMModel
from support.worker_harness import WorkerEnv, announce, event, feed_after, produce, running_worker, wait_until

from streamrec.contracts.items import item_text
from streamrec.serving.runner import Runner
from streamrec.text_models import bundled_dir

pytestmark = pytest.mark.integration
NEW = {"item_id": "new-item", "title": "The bold telescope handbook", "category": "astronomy"}
NEW_TEXT = "An astronomy guide about telescope and comet, galaxy, orbit; part of the telescope series."


def _session_about(runner: Runner, vec_of_new: list[float]) -> str:
    """An item whose one-click session ranks the new item in the top K (checked on a copy of the
    served model with the new item added, as the worker should have it)."""
    import numpy as np

    runner.upsert_items(["new-item"], np.asarray([vec_of_new], np.float32))
    for item in runner.item_ids:
        if item != "new-item" and "new-item" in runner.recommend([[item]], [["click"]], K, True)[0][0]:
            return item
    raise AssertionError("no one-item session ranks the new item: the text tower did not place it")


def test_a_new_item_with_text_reaches_a_feed_through_a_worker_without_torch(
    wenv: WorkerEnv, tmp_path: Path, minilm_model: MiniLMModel
) -> None:
    v1 = minilm_model.export(wenv.registry_dir)
    announce(wenv.broker, wenv.topics["models"], v1)
    local = Runner.load(v1.uri, "cpu")
    vecs = local.text_vectors([item_text(NEW["title"], NEW["category"], NEW_TEXT)])
    assert vecs is not None
    about = _session_about(local, vecs[0].tolist())
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        t0 = time.monotonic()
        produce(wenv.broker, wenv.topics["items"], [("new-item", {**NEW, "text": NEW_TEXT})])
        wait_until(lambda: w.metric("streamrec_catalogue_updates_total") >= 1, 30, lambda: w.tail())
        produce(wenv.broker, wenv.topics["events"], [("cold-u", event(0, "cold-u", about))])
        feed = feed_after(wenv, "cold-u", "e0", message=lambda: w.tail())
        assert "new-item" in feed.items, (feed.items, w.tail())
        assert time.monotonic() - t0 < 30
        assert w.proc is not None
        maps = Path(f"/proc/{w.proc.pid}/maps").read_text()
        assert "libtorch" not in maps and "torch/lib" not in maps  # torch was never imported

        # v2 names a text model this worker cannot find: refused, v1 keeps serving.
        models = tmp_path / "models" / "team-minilm"
        models.mkdir(parents=True)
        source = bundled_dir()
        assert source is not None
        for f in source.iterdir():
            if f.is_file():
                os.symlink(f, models / f.name)
        time.sleep(1.1)  # versions are timestamps
        v2 = minilm_model.export(wenv.registry_dir, search_dirs=(tmp_path / "models",), model_id="team-minilm")
        announce(wenv.broker, wenv.topics["models"], v2)
        wait_until(lambda: w.metric("streamrec_model_load_failures_total") == 1, 60, lambda: w.tail())
        assert "team-minilm" in w.tail(20_000)
        produce(wenv.broker, wenv.topics["events"], [("cold-u", event(1, "cold-u", about))])
        assert feed_after(wenv, "cold-u", "e1").model_version == v1.version
