"""The Grafana dashboard and the alerts use exactly the metrics the worker, trainer and API expose,
and k8s/README.md documents what an operator needs (install order, scaling, models)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

K8S = Path(__file__).resolve().parents[2] / "k8s"
# The metric names agreed with the worker (issue #4) and the trainer (issue #5).
WORKER_METRICS = {
    "streamrec_events_total",
    "streamrec_dlq_total",
    "streamrec_batch_size",
    "streamrec_event_to_feed_seconds",
    "streamrec_model_version_info",
    "streamrec_consumer_lag",
    "streamrec_live_events_with_feed_total",
    "streamrec_live_hits_at_10_total",
    "streamrec_live_reciprocal_rank_total",
}
TRAINER_METRICS = {
    "streamrec_trainer_updates_total",
    "streamrec_trainer_loss",
    "streamrec_trainer_promotions_total",
    "streamrec_trainer_rejections_total",
    "streamrec_model_age_seconds",
}
# The HTTP API's (api/metrics.py; tests/unit/api checks the names against its registry).
API_METRICS = {
    "streamrec_api_requests_total",
    "streamrec_api_request_seconds",
    "streamrec_api_events_total",
    "streamrec_api_items_total",
}
KNOWN = WORKER_METRICS | TRAINER_METRICS | API_METRICS
METRIC = re.compile(r"\b(streamrec_[a-z0-9_]+?)(?:_bucket|_sum|_count)?\b")


def _metrics(exprs: list[str]) -> set[str]:
    found = set()
    for expr in exprs:
        for m in METRIC.finditer(expr):
            name = m.group(0)
            found.add(name if name in KNOWN else m.group(1))
    return found


def _dashboard() -> dict[str, Any]:
    return json.loads((K8S / "dashboards" / "streamrec.json").read_text())


def test_dashboard_covers_every_metric_and_only_known_ones() -> None:
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource"]
    exprs = []
    ids = set()
    for panel in dash["panels"]:
        assert panel["id"] not in ids
        ids.add(panel["id"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"], panel["title"]
        exprs += [t["expr"] for t in panel["targets"]]
    used = _metrics(exprs)
    assert used == KNOWN, f"unknown: {sorted(used - KNOWN)}, missing: {sorted(KNOWN - used)}"


def test_histograms_are_used_as_histograms() -> None:
    exprs = [t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", [])]
    assert any("histogram_quantile" in e and "streamrec_event_to_feed_seconds_bucket" in e for e in exprs)
    assert not any(re.search(r"streamrec_event_to_feed_seconds(?!_bucket)", e) for e in exprs)


def test_alerts_use_known_metrics(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]]) -> None:
    (rule,) = kl.find(rendered["base"], "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    used = _metrics(exprs)
    assert used <= KNOWN, sorted(used - KNOWN)
    assert {"streamrec_consumer_lag", "streamrec_event_to_feed_seconds", "streamrec_model_age_seconds"} <= used


def test_readme_documents_operations() -> None:
    readme = (K8S / "README.md").read_text()
    for heading in ("Install order", "Scaling", "Rollout and rollback", "What to watch", "Secrets"):
        assert re.search(rf"^#+ .*{heading}", readme, re.M | re.I), heading
    assert "dashboards/streamrec.json" in readme
    assert "STREAMREC_REGISTRY__URL" in readme
    for metric in KNOWN:
        assert metric in readme, metric
