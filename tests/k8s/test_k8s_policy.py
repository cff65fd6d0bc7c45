"""Policy checks on every rendered overlay: what a reviewer would otherwise check by eye.

Security (non-root, read-only root, no escalation), resources (memory request = limit),
probes (of the long-running pods), pinned images, the scheduled retrain's Job shape (one at a
time, its own volume, the gate's verdict not retried), settings wiring (every STREAMREC_*
variable is a real settings field and the rendered environment parses), secrets only from
Secrets, SASL only over TLS, and the partition <-> replica arithmetic the worker group depends on.
"""

from __future__ import annotations

import os
import re
from types import ModuleType
from typing import Any

import pytest
from pydantic import BaseModel

from streamrec.config import Settings, TopicSettings

OVERLAYS = ["base", "dev", "gpu"]
APP = {
    "worker": ("StatefulSet", "streamrec-worker"),
    "trainer": ("Deployment", "streamrec-trainer"),
    "api": ("Deployment", "streamrec-api"),
    "retrain": ("CronJob", "streamrec-retrain"),
}
JOBS = ("CronJob", "Job")  # run to completion: no probes, no replicas, no Service
# Secrets created by operators rather than by these manifests: Strimzi writes one per
# KafkaUser (added below) and "<cluster>-cluster-ca-cert"; the Redis Secret (feeds and
# registry URLs with the AUTH password) is created out of band in production (k8s/README.md).
EXTERNAL_SECRETS = {"streamrec-cluster-ca-cert", "streamrec-redis", "streamrec-api-tokens"}
# Env vars that carry a password (in a URL) and so must come from a Secret.
SECRET_ENV = re.compile(r"PASSWORD|AUTH$|TOKENS$|^STREAMREC_REDIS$|^STREAMREC_REGISTRY__URL$")
IMAGE_TAG = re.compile(r"^[\w.-]+(?::\d+)?(?:/[\w.-]+)+:(?!latest$)[\w][\w.-]{0,127}$")


def _settings_env_names() -> set[str]:
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= {f"STREAMREC_{name.upper()}__{sub.upper()}" for sub in ann.model_fields}
        else:
            names.add(f"STREAMREC_{name.upper()}")
    return names


def _config(kl: ModuleType, docs: list[dict[str, Any]]) -> dict[str, str]:
    return kl.one(docs, "ConfigMap", "streamrec-config")["data"]


def _template(kl: ModuleType, docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The pod template (metadata + spec) of an app component, a CronJob's included."""
    return kl.pod_template(kl.one(docs, *APP[component]))


def _container(kl: ModuleType, docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (container,) = _template(kl, docs, component)["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_restricted(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    templates = kl.pod_templates(rendered[overlay])
    assert len(templates) == 5  # worker, trainer, api, redis, retrain
    for workload, pod in templates:
        where = f"{overlay} {workload['kind']}/{workload['metadata']['name']}"
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["runAsUser"] > 0 and psc["runAsGroup"] > 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["automountServiceAccountToken"] is False, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), where
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert sc.get("runAsNonRoot", psc["runAsNonRoot"]) is True, where
            assert not sc.get("privileged"), where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_resources_probes_and_pinned_images(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    for workload, pod in kl.pod_templates(rendered[overlay]):
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            where = f"{overlay} {workload['metadata']['name']}/{c['name']}"
            req, lim = c["resources"]["requests"], c["resources"]["limits"]
            assert {"cpu", "memory"} <= set(req) and {"cpu", "memory"} <= set(lim), where
            assert req["memory"] == lim["memory"], f"{where}: memory request = limit (no overcommit, no OOM surprise)"
            assert IMAGE_TAG.match(c["image"]), f"{where}: image {c['image']} must be pinned by a tag (not latest)"
            assert c.get("imagePullPolicy", "IfNotPresent") != "Always", where
        for c in pod["containers"] if workload["kind"] not in JOBS else []:
            assert "livenessProbe" in c and "readinessProbe" in c, f"{overlay} {c['name']}"
        grace = pod.get("terminationGracePeriodSeconds", 30)
        assert grace >= 30, f"{workload['metadata']['name']}: SIGTERM needs time for a graceful stop"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_app_probes_hit_the_web_port_endpoints(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    docs = rendered[overlay]
    config = _config(kl, docs)
    ports = {"worker": config["STREAMREC_WORKER__WEB_PORT"], "trainer": config["STREAMREC_TRAINER__WEB_PORT"]}
    for component, port in ports.items():
        c = _container(kl, docs, component)
        named = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert named["metrics"] == int(port), component
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        # /readyz fails while Kafka or Redis is unreachable; liveness must not, or an outage
        # of either would restart every pod at once.
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    worker = kl.one(docs, "StatefulSet", "streamrec-worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= 60
    api = _container(kl, docs, "api")  # the API serves probes and metrics on its one HTTP port
    assert {p["name"]: p["containerPort"] for p in api["ports"]} == {
        "http": int(_env(api)["STREAMREC_API__PORT"]["value"])
    }
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert api[probe]["httpGet"] == {"path": path, "port": "http"}
    assert _env(api)["STREAMREC_API__TOKENS"]["valueFrom"]["secretKeyRef"]["name"] == "streamrec-api-tokens"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_env_is_real_and_parses(
    kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str, monkeypatch: pytest.MonkeyPatch
):
    docs = rendered[overlay]
    config = _config(kl, docs)
    known = _settings_env_names()
    for component in APP:
        c = _container(kl, docs, component)
        env = dict(config)
        for name, e in _env(c).items():
            if name.startswith("STREAMREC_"):
                env[name] = e.get("value", "secret-from-k8s")
        unknown = {k for k in env if k.startswith("STREAMREC_")} - known
        assert not unknown, f"{component}: not settings fields: {sorted(unknown)}"
        for key in [k for k in os.environ if k.startswith("STREAMREC_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for url in ("STREAMREC_REDIS", "STREAMREC_REGISTRY__URL"):
            if url in env:
                monkeypatch.setenv(url, "redis://:pw@streamrec-redis.streamrec.svc:6379/0")
        settings = Settings()  # raises on a bad value
        assert settings.broker and settings.partitions >= 1
        assert str(settings.data_dir) == "/var/lib/streamrec"
        assert settings.kafka_security.sasl_username == env["STREAMREC_KAFKA_SECURITY__SASL_USERNAME"]
        volume_mounts = [m["mountPath"] for m in c["volumeMounts"]]
        assert str(settings.data_dir) in volume_mounts, "data_dir must be a writable volume (read-only root fs)"
        assert "/tmp" in volume_mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_secrets(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    docs = rendered[overlay]
    config = _config(kl, docs)
    assert not [k for k in config if SECRET_ENV.search(k) or re.search("SECRET|TOKEN", k)], "no secret in ConfigMap"
    existing = {d["metadata"]["name"] for d in kl.find(docs, "Secret")}
    existing |= EXTERNAL_SECRETS | {u["metadata"]["name"] for u in kl.find(docs, "KafkaUser")}
    for _workload, pod in kl.pod_templates(docs):
        for c in pod["containers"]:
            for e in c.get("env", []):
                if SECRET_ENV.search(e["name"]):
                    assert "secretKeyRef" in e.get("valueFrom", {}), f"{c['name']}: {e['name']} from a Secret"
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in existing, ref
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    assert src["secretRef"]["name"] in existing
        for vol in pod.get("volumes", []):
            if "secret" in vol:
                assert vol["secret"]["secretName"] in existing
    secrets = kl.find(docs, "Secret")
    if overlay == "dev":
        assert {d["metadata"]["name"] for d in secrets} == {"streamrec-redis", "streamrec-api-tokens"}
        (redis,) = kl.find(docs, "Secret", "streamrec-redis")
        for key in ("url", "registry-url"):
            url = redis["stringData"][key]
            assert f":{redis['stringData']['password']}@" in url, "Redis AUTH: client URLs carry the server password"
    else:
        assert not secrets, "production secrets are created out of band, never committed"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sasl_only_over_tls(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    docs = rendered[overlay]
    config = _config(kl, docs)
    kafka = kl.one(docs, "Kafka", "streamrec")
    host, port = config["STREAMREC_BROKER"].rsplit(":", 1)
    assert host.startswith(f"{kafka['metadata']['name']}-kafka-bootstrap.")
    (listener,) = [x for x in kafka["spec"]["kafka"]["listeners"] if x["port"] == int(port)]
    protocol = config["STREAMREC_KAFKA_SECURITY__PROTOCOL"]
    # faust's SASLCredentials falls back to PLAIN over plaintext without an ssl_context.
    assert protocol == "SASL_SSL"
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == config["STREAMREC_KAFKA_SECURITY__SASL_MECHANISM"].lower()
    ca_file = config["STREAMREC_KAFKA_SECURITY__CA_FILE"]
    users = {u["metadata"]["name"] for u in kl.find(docs, "KafkaUser")}
    for component in APP:
        c = _container(kl, docs, component)
        env = _env(c)
        assert env["STREAMREC_KAFKA_SECURITY__SASL_USERNAME"]["value"] in users
        secret = env["STREAMREC_KAFKA_SECURITY__SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": env["STREAMREC_KAFKA_SECURITY__SASL_USERNAME"]["value"], "key": "password"}
        pod = _template(kl, docs, component)["spec"]
        (mount,) = [m for m in c["volumeMounts"] if ca_file.startswith(m["mountPath"] + "/")]
        (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert vol["secret"]["secretName"] == f"{kafka['metadata']['name']}-cluster-ca-cert"
        assert {"key": "ca.crt", "path": ca_file.rsplit("/", 1)[1]} in vol["secret"]["items"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_registry_reachable_from_every_app_pod(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    """No shared filesystem: the registry is a Redis URL every app pod gets from the Secret."""
    docs = rendered[overlay]
    for component in APP:
        env = _env(_container(kl, docs, component))
        ref = env["STREAMREC_REGISTRY__URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "streamrec-redis", "key": "registry-url"}, component
        labels = _template(kl, docs, component)["metadata"]["labels"]
        assert labels["streamrec.io/redis-client"] == "true", f"{component} must pass the Redis NetworkPolicy"
    assert kl.find(docs, "PersistentVolumeClaim", "streamrec-trainer"), "trainer state survives a restart"
    redis_conf = kl.one(docs, "ConfigMap", "streamrec-redis")["data"]["redis.conf"]
    assert "maxmemory-policy volatile-lru" in redis_conf, "registry keys have no TTL and must never be evicted"


def _acl_ops(user: dict[str, Any], rtype: str, name: str) -> set[str]:
    ops: set[str] = set()
    for acl in user["spec"]["authorization"]["acls"]:
        res = acl["resource"]
        literal = res.get("patternType", "literal") == "literal"
        if res["type"] == rtype and (res["name"] == name if literal else name.startswith(res["name"])):
            ops |= set(acl["operations"])
    return ops


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_users_and_partitions_agree(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    docs = rendered[overlay]
    config = _config(kl, docs)
    names = TopicSettings()
    app_id = config["STREAMREC_WORKER__APP_ID"]
    changelog = f"{app_id}-sessions-changelog"
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in kl.find(docs, "KafkaTopic")}
    ours = {names.events, names.dlq, names.items, names.training, names.models, names.erasures}
    assert set(topics) == ours | {changelog}
    for compacted in (names.items, names.models, names.erasures, changelog):
        assert topics[compacted]["spec"]["config"]["cleanup.policy"] == "compact", compacted
    assert topics[names.events]["spec"]["config"]["cleanup.policy"] == "delete"
    assert topics[names.models]["spec"]["partitions"] == 1, "model versions are totally ordered"

    partitions = int(config["STREAMREC_PARTITIONS"])
    assert topics[names.events]["spec"]["partitions"] == partitions
    assert topics[changelog]["spec"]["partitions"] == partitions, "faust: changelog partitions = source partitions"
    assert topics[names.erasures]["spec"]["partitions"] == partitions, "co-partitioned with the events (erasures)"

    replication = int(config["STREAMREC_REPLICATION"])
    brokers = sum(p["spec"]["replicas"] for p in kl.find(docs, "KafkaNodePool") if "broker" in p["spec"]["roles"])
    assert replication <= brokers
    kafka_config = kl.one(docs, "Kafka", "streamrec")["spec"]["kafka"]["config"]
    assert kafka_config["default.replication.factor"] == replication
    assert kafka_config["offsets.topic.replication.factor"] == replication
    for name, t in topics.items():
        assert t["spec"]["replicas"] == replication, name
        isr = t["spec"]["config"]["min.insync.replicas"]
        assert isr < replication or replication == 1 == isr, f"{name}: one broker down must not stop writes"

    worker = kl.one(docs, "KafkaUser", "streamrec-worker")
    assert {"Read"} <= _acl_ops(worker, "topic", names.events)
    assert {"Read"} <= _acl_ops(worker, "topic", names.items) & _acl_ops(worker, "topic", names.models)
    assert {"Read"} <= _acl_ops(worker, "topic", names.erasures)
    assert {"Write"} <= _acl_ops(worker, "topic", names.dlq) & _acl_ops(worker, "topic", names.training)
    assert {"All"} <= _acl_ops(worker, "topic", changelog)
    assert "Read" in _acl_ops(worker, "group", app_id)
    trainer = kl.one(docs, "KafkaUser", "streamrec-trainer")
    assert "Read" in _acl_ops(trainer, "topic", names.training)
    assert "Write" in _acl_ops(trainer, "topic", names.models)
    assert "Read" in _acl_ops(trainer, "group", config["STREAMREC_TRAINER__GROUP_ID"])
    assert "Read" in _acl_ops(trainer, "topic", names.erasures)
    assert not _acl_ops(trainer, "topic", names.events), "least privilege"
    api = kl.one(docs, "KafkaUser", "streamrec-api")
    assert "Write" in _acl_ops(api, "topic", names.erasures) and "Read" not in _acl_ops(api, "topic", names.erasures)
    retrain = kl.one(docs, "KafkaUser", "streamrec-retrain")
    assert "Read" in _acl_ops(retrain, "topic", names.events), "it retrains from the events topic"
    assert {"Read", "Write"} <= _acl_ops(retrain, "topic", names.models), "the served version; the announcement"
    assert "Read" in _acl_ops(retrain, "topic", names.erasures), "erased users' events are left out"
    assert not _acl_ops(retrain, "topic", names.training) and not _acl_ops(retrain, "group", app_id), "least privilege"

    sts = kl.one(docs, "StatefulSet", "streamrec-worker")
    assert sts["spec"].get("replicas", 1) <= partitions
    for so in kl.find(docs, "ScaledObject"):
        assert so["spec"]["maxReplicaCount"] == partitions, "a worker beyond P partitions owns nothing"
        assert "replicas" not in sts["spec"], "replicas belong to the autoscaler"
        (trigger,) = so["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["topic"] == names.events and meta["consumerGroup"] == app_id
        assert meta["bootstrapServers"] == config["STREAMREC_BROKER"]
        assert meta["sasl"] == "scram_sha512" and meta["tls"] == "enable"
        assert meta["allowIdleConsumers"] == "false"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_monitors_and_pdb_select_pods(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str):
    docs = rendered[overlay]
    pods = [(w, pod) for w, pod in kl.pod_templates(docs) if w["kind"] not in JOBS]

    def selected(selector: dict[str, str]) -> list[dict[str, Any]]:
        return [
            pod
            for w, pod in pods
            if kl.selector_matches({"matchLabels": selector}, w["spec"]["template"]["metadata"]["labels"])
        ]

    for w, _pod in pods:
        assert kl.selector_matches(w["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])
    services = kl.find(docs, "Service")
    for svc in services:
        (pod,) = selected(svc["spec"]["selector"])
        names = {p["name"] for c in pod["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in names, f"{svc['metadata']['name']}: {p['targetPort']}"
    (sm,) = kl.find(docs, "ServiceMonitor")
    scraped = [s for s in services if kl.selector_matches(sm["spec"]["selector"], s["metadata"]["labels"])]
    assert {s["metadata"]["name"] for s in scraped} == {"streamrec-worker", "streamrec-trainer", "streamrec-api"}
    for s in scraped:
        assert any(p["name"] == sm["spec"]["endpoints"][0]["port"] for p in s["spec"]["ports"])
    (pdb,) = kl.find(docs, "PodDisruptionBudget")
    (pod,) = selected(pdb["spec"]["selector"]["matchLabels"])
    assert pod["containers"][0]["name"] == "worker" and pdb["spec"]["maxUnavailable"] == 1


def test_dev_is_one_of_each_on_cpu(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["dev"]
    for w, pod in kl.pod_templates(docs):
        assert w["kind"] in JOBS or w["spec"].get("replicas") == 1, w["metadata"]["name"]
        assert all("nvidia.com/gpu" not in c["resources"]["limits"] for c in pod["containers"])
    assert all(p["spec"]["replicas"] == 1 for p in kl.find(docs, "KafkaNodePool"))
    assert not kl.find(docs, "ScaledObject")
    assert _config(kl, docs)["STREAMREC_DEVICE"] == "cpu"


def test_gpu_overlay_puts_worker_and_trainer_on_gpus(kl: ModuleType, rendered: dict[str, list[dict[str, Any]]]):
    docs = rendered["gpu"]
    assert _config(kl, docs)["STREAMREC_DEVICE"] == "cuda"
    for component in ("worker", "trainer", "retrain"):
        pod = _template(kl, docs, component)["spec"]
        (c,) = pod["containers"]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1", component
        assert c["image"].endswith("-gpu"), component
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    redis = kl.one(docs, "StatefulSet", "streamrec-redis")["spec"]["template"]["spec"]
    assert "nodeSelector" not in redis, "Redis stays off the GPU nodes"
    for overlay in ("base", "dev"):
        for _w, pod in kl.pod_templates(rendered[overlay]):
            assert not pod["containers"][0]["image"].endswith("-gpu")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_retrain_runs_one_at_a_time_on_its_own_volume(
    kl: ModuleType, rendered: dict[str, list[dict[str, Any]]], overlay: str
):
    """The CronJob of ``streamrec retrain``: never two at once, a bound PVC for its data dir, the
    trainer's wiring (service account, config, secrets), and the gate's verdict (exit 3) not retried."""
    docs = rendered[overlay]
    cron = kl.one(docs, "CronJob", "streamrec-retrain")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] <= 1
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and rule["onExitCodes"] == {
        "containerName": "retrain",
        "operator": "In",
        "values": [3],
    }
    pod = _template(kl, docs, "retrain")["spec"]
    assert pod["restartPolicy"] == "Never", "podFailurePolicy needs it; a failed pod is retried as a new pod"
    container = _container(kl, docs, "retrain")
    assert container["args"][0] == "retrain"
    volumes = {v["name"]: v for v in pod["volumes"]}
    (data,) = [m for m in container["volumeMounts"] if m["mountPath"] == _config(kl, docs)["STREAMREC_DATA_DIR"]]
    claim = volumes[data["name"]]["persistentVolumeClaim"]["claimName"]
    assert claim == "streamrec-retrain" and kl.find(docs, "PersistentVolumeClaim", claim), "the PVC exists"
    assert claim != "streamrec-trainer", "ReadWriteOnce: the trainer's volume is the trainer's"
    trainer_pod = _template(kl, docs, "trainer")["spec"]
    assert pod["serviceAccountName"] == trainer_pod["serviceAccountName"]
    trainer = _container(kl, docs, "trainer")
    assert container["envFrom"] == trainer["envFrom"]
    assert _env(container)["STREAMREC_REGISTRY__URL"] == _env(trainer)["STREAMREC_REGISTRY__URL"]
