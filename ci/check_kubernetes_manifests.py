#!/usr/bin/env python3
"""Checks rendered Kubernetes manifests (`kubectl kustomize kubernetes/overlays/<name>`).

    check_kubernetes_manifests.py split RENDERED BUILTIN_OUT CUSTOM_OUT
        Writes the objects of Kubernetes' own API groups to BUILTIN_OUT (for
        kubernetes-validate, which has their schemas) and the custom resources of the operators
        (Prometheus Operator, Strimzi, cert-manager) to CUSTOM_OUT.

    check_kubernetes_manifests.py check RENDERED...
        The checks below on each rendered overlay; prints each problem and exits 1 if any.

    check_kubernetes_manifests.py self-test RENDERED
        Breaks copies of a rendered overlay in known ways and fails unless each is caught.

- the namespace enforces the restricted Pod Security Standard and holds every namespaced
  object (the KafkaTopics excepted: they live in the Kafka cluster's namespace);
- every Deployment: labels, a container port named `http`, the security context the
  restricted standard asks for, a read-only root with /tmp as an emptyDir, requests and
  limits, startup, liveness and readiness probes on the right paths and port, no replica count
  (its HorizontalPodAutoscaler owns it), a grace period longer than the services' shutdown;
- figalize, history and imagizer, through check_deploy_config.check_services (the rules the
  docker-compose stack is checked against): they set only variables of .env.example
  (uncommented `NAME=` lines), none of another binary's port, and their container ports and
  probes are their port variable's port. Here, besides: every variable comes from a ConfigMap
  of the render or a named Secret key; HOST, LOG_FORMAT, KAFKA_CREATE_TOPICS, SCHEMES_FILE and
  HISTORY_APPEND_URL agree with the rest of the manifests; the schemes ConfigMap holds
  crates/figalize/schemes/default.json; figalize's JOURNAL_DIR is a writable volume of the
  pod's own, on disk, larger than JOURNAL_MAX_BYTES; no Secret is in the render;
- a Service, an autoscaling/v2 CPU HorizontalPodAutoscaler and a PodDisruptionBudget per
  Deployment;
- the NetworkPolicies allow exactly the design's flows: evaluated over every pair of the pods
  involved (those of the namespace, ingress-nginx, Prometheus, kube-dns, the Kafka brokers,
  any other pod) and the ports in play, and, for the managed services outside the cluster,
  which pods may reach an ipBlock on which port;
- the Ingresses route frontend/README.md's table (evaluated as ingress-nginx matches paths)
  and none of history's appends (/api/append/, /api/append/batch/: internal), with TLS from an
  issuer of the render, the 16 KiB body limit, a positive rate limit per client address on
  every Ingress (so on every public path), POST /api/figalize/'s own on an Ingress of exactly
  that path, no looser than the rest, and the unbuffered stream;
- the custom resources, which kubernetes-validate has no schema for, are checked for their
  structure here: PodMonitor, PrometheusRule (and that they carry observability/'s rules),
  KafkaTopic (and that they are the topics the services use), ClusterIssuer; the Grafana
  dashboards are ConfigMaps labelled grafana_dashboard: "1" holding observability/'s files.

Needs Python 3.11 and PyYAML.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The check of the services' variables and ports shared with the docker-compose check.
from check_deploy_config import ServiceConfig, check_services, read_env_example  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMES = ROOT / "crates/figalize/schemes/default.json"
RULES = ROOT / "observability/prometheus/rules"
DASHBOARDS = ROOT / "observability/grafana/dashboards"
PODMONITOR = ROOT / "observability/prometheus/kubernetes/podmonitor.yaml"

PART_OF = "figachechnaya"
# The services and the variable holding each one's port.
SERVICES = {
    "figalize": "FIGALIZE_API_PORT",
    "history": "HISTORY_API_PORT",
    "imagizer": "IMAGIZER_API_PORT",
}
FRONTEND = "frontend"
DEPLOYMENTS = [FRONTEND, *SERVICES]
# Custom resources: the operators' API groups.
CUSTOM_GROUPS = {"monitoring.coreos.com", "kafka.strimzi.io", "cert-manager.io"}
CLUSTER_SCOPED = {"Namespace", "ClusterIssuer"}
KAFKA_NAMESPACE = "kafka"
SECRET_KEYS = {
    "figachechnaya-db": {"DB_PASS", "DATABASE_URL"},
    "figachechnaya-s3": {"S3_ACCESS_KEY", "S3_SECRET_KEY"},
}
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Kubernetes quantities of bytes: a number and an optional suffix.
QUANTITY = re.compile(r"([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?")
QUANTITY_UNITS = {
    None: 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
LETSENCRYPT = {
    "https://acme-v02.api.letsencrypt.org/directory",
    "https://acme-staging-v02.api.letsencrypt.org/directory",
}


def group_of(doc: dict) -> str:
    api_version = doc.get("apiVersion", "")
    return api_version.split("/")[0] if "/" in api_version else ""


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


# --- label selectors and NetworkPolicies -------------------------------------------------------


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions); {} matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            raise ValueError(f"unknown selector operator {operator}")
    return True


@dataclass(frozen=True)
class Endpoint:
    """A pod that takes part in the flows: where it runs, its labels, its named ports."""

    name: str
    namespace: str
    namespace_labels: tuple
    labels: tuple
    ports: tuple = ()

    @property
    def label_dict(self) -> dict:
        return dict(self.labels)

    @property
    def namespace_label_dict(self) -> dict:
        return dict(self.namespace_labels)

    def named_port(self, name: str) -> int | None:
        return dict(self.ports).get(name)


def endpoint(name, namespace, namespace_labels, labels, ports=None) -> Endpoint:
    namespace_labels = {"kubernetes.io/metadata.name": namespace, **namespace_labels}
    return Endpoint(
        name,
        namespace,
        tuple(sorted(namespace_labels.items())),
        tuple(sorted(labels.items())),
        tuple(sorted((ports or {}).items())),
    )


def peer_matches(peer: dict, policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        return False  # pods are not addressed by ipBlock here; see the ipBlock check
    pod_selector = peer.get("podSelector")
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        if other.namespace != policy_namespace:
            return False
    elif not selector_matches(namespace_selector, other.namespace_label_dict):
        return False
    if pod_selector is not None and not selector_matches(pod_selector, other.label_dict):
        return False
    return True


def port_matches(ports: list | None, port: int, protocol: str, destination: Endpoint) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            wanted = destination.named_port(wanted)
            if wanted is None:
                continue
        end = entry.get("endPort", wanted)
        if wanted <= port <= end:
            return True
    return False


def policies_selecting(policies: list[dict], pod: Endpoint, kind: str) -> list[dict]:
    chosen = []
    for policy in policies:
        if policy["metadata"].get("namespace") != pod.namespace:
            continue
        spec = policy.get("spec", {})
        types = spec.get("policyTypes") or (
            ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]
        )
        if kind in types and selector_matches(spec.get("podSelector", {}), pod.label_dict):
            chosen.append(policy)
    return chosen


def allowed(
    policies, source: Endpoint, destination: Endpoint, port: int, protocol: str, home: str
) -> bool:
    if source.namespace == home:
        selecting = policies_selecting(policies, source, "Egress")
        if selecting and not any(
            (
                not rule.get("to")
                or any(peer_matches(p, source.namespace, destination) for p in rule["to"])
            )
            and port_matches(rule.get("ports"), port, protocol, destination)
            for policy in selecting
            for rule in policy["spec"].get("egress") or []
        ):
            return False
    if destination.namespace == home:
        selecting = policies_selecting(policies, destination, "Ingress")
        if selecting and not any(
            (
                not rule.get("from")
                or any(peer_matches(p, destination.namespace, source) for p in rule["from"])
            )
            and port_matches(rule.get("ports"), port, protocol, destination)
            for policy in selecting
            for rule in policy["spec"].get("ingress") or []
        ):
            return False
    return True


# --- the checks ---------------------------------------------------------------------------------


@dataclass
class Render:
    path: Path
    docs: list[dict]
    problems: list[str] = field(default_factory=list)

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path.name}: {where}: {message}")

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    def get(self, kind: str, name: str) -> dict | None:
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        return None

    def configmap_data(self, name: str) -> dict | None:
        doc = self.get("ConfigMap", name)
        return None if doc is None else (doc.get("data") or {})


def where(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def check_namespace(r: Render) -> str | None:
    namespaces = r.of_kind("Namespace")
    if len(namespaces) != 1:
        r.problem("Namespace", f"expected one Namespace, found {len(namespaces)}")
        return None
    ns = namespaces[0]
    name = ns["metadata"]["name"]
    labels = ns["metadata"].get("labels") or {}
    for mode in ("enforce", "audit", "warn"):
        if labels.get(f"pod-security.kubernetes.io/{mode}") != "restricted":
            r.problem(where(ns), f"not labelled pod-security.kubernetes.io/{mode}: restricted")
    for doc in r.docs:
        kind = doc.get("kind")
        namespace = doc["metadata"].get("namespace")
        if kind in CLUSTER_SCOPED:
            if namespace is not None:
                r.problem(where(doc), "is cluster-scoped but has a namespace")
        elif kind == "KafkaTopic":
            if namespace != KAFKA_NAMESPACE:
                r.problem(
                    where(doc),
                    f"is in namespace {namespace}, not {KAFKA_NAMESPACE} (the Topic Operator's)",
                )
        elif namespace != name:
            r.problem(where(doc), f"is in namespace {namespace}, not {name}")
        if kind == "Secret":
            r.problem(
                where(doc),
                "a Secret is in the manifests: secrets are created in the cluster, never committed",
            )
    return name


def http_port(container: dict) -> int | None:
    for port in container.get("ports") or []:
        if port.get("name") == "http":
            return port.get("containerPort")
    return None


def check_security(r: Render, dep: dict) -> None:
    w = where(dep)
    pod = dep["spec"]["template"]["spec"]
    pod_sc = pod.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            r.problem(w, f"{flag} is set")
    if pod.get("automountServiceAccountToken") is not False:
        r.problem(
            w, "automountServiceAccountToken is not false (the services do not talk to the API)"
        )
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            r.problem(
                w,
                f"volume {volume['name']} is of a type the restricted standard refuses: {sorted(kinds)}",
            )
    if pod_sc.get("runAsUser") == 0:
        r.problem(w, "the pod runs as user 0")
    for container in (pod.get("initContainers") or []) + pod["containers"]:
        cw = f"{w} container {container['name']}"
        sc = container.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            r.problem(cw, "runAsNonRoot is not true (pod or container)")
        if sc.get("runAsUser") == 0:
            r.problem(cw, "runs as user 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            r.problem(cw, "allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            r.problem(cw, "is privileged")
        if sc.get("readOnlyRootFilesystem") is not True:
            r.problem(cw, "readOnlyRootFilesystem is not true")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            r.problem(cw, "capabilities do not drop ALL")
        if capabilities.get("add"):
            r.problem(cw, f"adds capabilities {capabilities['add']}")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            r.problem(cw, f"seccompProfile is {seccomp}, not RuntimeDefault")
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(section) or {}):
                    r.problem(cw, f"no {section}.{resource}")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        tmp = volumes.get(mounts.get("/tmp", ""), {})
        if "emptyDir" not in tmp:
            r.problem(cw, "/tmp is not an emptyDir (the root filesystem is read-only)")


def check_probes(r: Render, dep: dict, container: dict, paths: dict) -> None:
    cw = f"{where(dep)} container {container['name']}"
    port = http_port(container)
    for probe_name, path in paths.items():
        probe = container.get(probe_name)
        if not probe:
            r.problem(cw, f"no {probe_name}")
            continue
        get = probe.get("httpGet") or {}
        if get.get("path") != path:
            r.problem(cw, f"{probe_name} asks {get.get('path')}, not {path}")
        if get.get("port") not in ("http", port):
            r.problem(cw, f"{probe_name} is on port {get.get('port')}, not the http port ({port})")


def resolve_env(r: Render, dep: dict, container: dict) -> dict:
    """The container's variables: {name: value, or None when it comes from a Secret}."""
    w = f"{where(dep)} container {container['name']}"
    values: dict = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            data = r.configmap_data(name)
            if data is None:
                if not source["configMapRef"].get("optional"):
                    r.problem(w, f"envFrom names ConfigMap {name}, which is not in the manifests")
                continue
            prefix = source.get("prefix", "")
            for key, value in data.items():
                values[prefix + key] = value
        elif "secretRef" in source:
            r.problem(
                w,
                f"envFrom takes every key of Secret {source['secretRef']['name']}: name each variable with env.valueFrom.secretKeyRef",
            )
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var or "valueFrom" not in var:
            values[name] = var.get("value", "")
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            secret, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            if key != name:
                r.problem(
                    w,
                    f"{name} comes from Secret {secret} key {key}: the key should be the variable's name",
                )
            if secret not in SECRET_KEYS or key not in SECRET_KEYS[secret]:
                r.problem(
                    w,
                    f"{name} comes from Secret {secret} key {key}, a key kubernetes/README.md does not create",
                )
            values[name] = None
        elif "configMapKeyRef" in ref:
            cm, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
            data = r.configmap_data(cm)
            if data is None or key not in data:
                r.problem(
                    w, f"{name} comes from ConfigMap {cm} key {key}, which is not in the manifests"
                )
                continue
            values[name] = data[key]
        else:
            r.problem(w, f"{name} comes from {sorted(ref)}, which this check does not know")
    return values


def service_config(r: Render, dep: dict, container: dict) -> tuple[ServiceConfig, dict]:
    """The service as check_deploy_config.check_services sees it, and its variables."""
    values = resolve_env(r, dep, container)
    ports = {p["containerPort"] for p in container.get("ports") or []}
    named = {p["name"]: p["containerPort"] for p in container.get("ports") or [] if "name" in p}
    probe_ports = set()
    exec_probe = None
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(probe_name) or {}
        port = (probe.get("httpGet") or {}).get("port")
        if port is not None:
            probe_ports.add(named.get(port, -1) if isinstance(port, str) else port)
        if "exec" in probe:
            exec_probe = probe["exec"].get("command")
    return (
        ServiceConfig(env=values, ports=ports, healthcheck=exec_probe, probe_ports=probe_ports),
        values,
    )


def check_service_settings(r: Render, dep: dict, container: dict, values: dict) -> None:
    """What this deployment wants beyond the binaries' own rules."""
    service = dep["metadata"]["name"]
    cw = f"{where(dep)} container {container['name']}"
    expected = {"HOST": "0.0.0.0", "LOG_FORMAT": "json"}
    if service in ("figalize", "imagizer"):
        expected["KAFKA_CREATE_TOPICS"] = "false"
    for name, value in expected.items():
        if values.get(name) != value:
            r.problem(cw, f"{name} is {values.get(name)!r}, not {value!r}")
    # The grace period covers the services' own shutdown.
    try:
        delay = int(values.get("SHUTDOWN_DELAY_MS") or 0)
        grace = int(values.get("SHUTDOWN_GRACE_MS") or 20000)
    except ValueError:
        r.problem(cw, "SHUTDOWN_DELAY_MS or SHUTDOWN_GRACE_MS is not a number")
    else:
        if delay <= 0:
            r.problem(
                cw, "SHUTDOWN_DELAY_MS is 0: endpoints would be removed after the listener closes"
            )
        period = dep["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        if period < math.ceil((delay + grace) / 1000):
            r.problem(
                where(dep),
                f"terminationGracePeriodSeconds {period} is less than SHUTDOWN_DELAY_MS + SHUTDOWN_GRACE_MS ({delay + grace} ms)",
            )


def check_schemes(r: Render, dep: dict, container: dict, values: dict) -> None:
    cw = f"{where(dep)} container {container['name']}"
    path = values.get("SCHEMES_FILE") or "/var/config/example.json"
    directory, _, file_name = path.rpartition("/")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    volume = next(
        (
            v
            for v in dep["spec"]["template"]["spec"].get("volumes") or []
            if v["name"] == mounts.get(directory)
        ),
        None,
    )
    if not volume or "configMap" not in volume:
        r.problem(cw, f"no ConfigMap is mounted at {directory} for {path}")
        return
    items = {i["path"]: i["key"] for i in volume["configMap"].get("items") or []}
    key = items.get(file_name, file_name if not items else None)
    data = r.configmap_data(volume["configMap"]["name"])
    if data is None or key not in data:
        r.problem(cw, f"{path} is not in ConfigMap {volume['configMap']['name']}")
        return
    if data[key] != SCHEMES.read_text(encoding="utf-8"):
        r.problem(cw, f"{path} differs from {SCHEMES.relative_to(ROOT)}")


def quantity_bytes(text: object) -> int | None:
    """A Kubernetes quantity of bytes (`128Mi`, `64M`, `1000`), or None if it is not one."""
    match = QUANTITY.fullmatch(str(text))
    return int(match.group(1)) * QUANTITY_UNITS[match.group(2)] if match else None


def check_journal(r: Render, dep: dict, container: dict, values: dict) -> None:
    """figalize's journal is on a volume that keeps it through a container's restart.

    The root filesystem is read-only, so JOURNAL_DIR must be a writable mount. The volume must
    be the pod's own (emptyDir or ephemeral): one that every replica of the template shares
    would put two processes on one journal, which figalize refuses at start. In memory it would
    count against the memory limit; smaller than JOURNAL_MAX_BYTES, it would get the pod
    evicted, journal and all, before the journal refuses anything.
    """
    cw = f"{where(dep)} container {container['name']}"
    defaults = read_env_example(ENV_EXAMPLE)
    path = values.get("JOURNAL_DIR") or ""
    if not path.startswith("/"):
        r.problem(
            cw,
            f"JOURNAL_DIR is {path!r}, not an absolute path: its default, $DATA_DIR/journal, is on the read-only root",
        )
        return
    path = posixpath.normpath(path)
    mounts = [
        m
        for m in container.get("volumeMounts") or []
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    if not mounts:
        r.problem(cw, f"no volume is mounted at JOURNAL_DIR {path}: the root is read-only")
        return
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    if mount.get("readOnly"):
        r.problem(cw, f"the volume at JOURNAL_DIR {path} is mounted readOnly")
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"].get("volumes") or []}
    volume = volumes.get(mount["name"], {})
    if "emptyDir" not in volume and "ephemeral" not in volume:
        r.problem(
            cw,
            f"JOURNAL_DIR {path} is on volume {mount['name']}, which every replica shares or which is not writable: each needs an emptyDir or ephemeral volume of its own",
        )
        return
    empty_dir = volume.get("emptyDir") or {}
    if empty_dir.get("medium") == "Memory":
        r.problem(cw, f"JOURNAL_DIR {path} is in memory (medium: Memory): put it on the node's disk")
    limit = empty_dir.get("sizeLimit")
    maximum = values.get("JOURNAL_MAX_BYTES") or defaults.get("JOURNAL_MAX_BYTES") or ""
    if limit is not None and maximum.isdigit():
        size = quantity_bytes(limit)
        if size is None or size <= int(maximum):
            r.problem(
                cw,
                f"the journal's emptyDir has sizeLimit {limit}, not more than JOURNAL_MAX_BYTES ({maximum}): the pod would be evicted before the journal is full",
            )


def check_migrations(r: Render, dep: dict, container: dict) -> None:
    """history migrates in an init container: its own image running `history migrate`, with
    the service's configuration, so both reach the same database."""
    w = where(dep)
    inits = dep["spec"]["template"]["spec"].get("initContainers") or []
    migrate = next((c for c in inits if c.get("args") == ["migrate"]), None)
    if migrate is None:
        r.problem(w, "no init container running `history migrate`")
        return
    if migrate.get("image") != container.get("image"):
        r.problem(w, f"the migrate init container runs {migrate.get('image')!r}, not the service's image")
    for key in ("envFrom", "env"):
        if migrate.get(key) != container.get(key):
            r.problem(w, f"the migrate init container's {key} differs from the service's")


def check_deployments(r: Render) -> dict:
    """Returns {service: its variables}."""
    env_of = {}
    configs = {}
    for name in DEPLOYMENTS:
        dep = r.get("Deployment", name)
        if dep is None:
            r.problem(f"Deployment/{name}", "missing")
            continue
        w = where(dep)
        spec = dep["spec"]
        want = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}
        for what, labels in (
            ("metadata.labels", dep["metadata"].get("labels") or {}),
            ("spec.template.metadata.labels", spec["template"]["metadata"].get("labels") or {}),
            ("spec.selector.matchLabels", spec["selector"].get("matchLabels") or {}),
        ):
            for key, value in want.items():
                if labels.get(key) != value:
                    r.problem(w, f"{what} has no {key}: {value}")
        if "replicas" in spec:
            r.problem(
                w,
                "sets replicas: its HorizontalPodAutoscaler owns the count (an apply would reset it)",
            )
        if not spec["template"]["spec"].get("topologySpreadConstraints"):
            r.problem(w, "no topologySpreadConstraints")
        check_security(r, dep)
        containers = spec["template"]["spec"]["containers"]
        container = next((c for c in containers if c["name"] == name), None)
        if container is None:
            r.problem(w, f"no container named {name}")
            continue
        image = container.get("image", "")
        if not re.fullmatch(
            rf"figachechnaya/{name}:[0-9A-Za-z][0-9A-Za-z._-]*", image
        ) or image.endswith(":latest"):
            r.problem(w, f"image {image!r} is not figachechnaya/{name} with a pinned tag")
        if http_port(container) is None:
            r.problem(w, "no container port named http")
        if name == FRONTEND:
            check_probes(
                r,
                dep,
                container,
                {
                    "startupProbe": "/healthz",
                    "livenessProbe": "/healthz",
                    "readinessProbe": "/healthz",
                },
            )
            if http_port(container) != 8080:
                r.problem(w, "the frontend serves on 8080")
        else:
            check_probes(
                r,
                dep,
                container,
                {
                    "startupProbe": "/api/livez/",
                    "livenessProbe": "/api/livez/",
                    "readinessProbe": "/api/healthz/",
                },
            )
            configs[name], env_of[name] = service_config(r, dep, container)
            check_service_settings(r, dep, container, env_of[name])
            if name == "figalize":
                check_schemes(r, dep, container, env_of[name])
                check_journal(r, dep, container, env_of[name])
            if name == "history":
                check_migrations(r, dep, container)
    # Only variables of .env.example, no other binary's port variable, ports and probes on the
    # port variable's port: the rules docker-compose is checked against too.
    for problem in check_services(configs, ENV_EXAMPLE):
        service = problem.split(":", 1)[0]
        r.problem(f"Deployment/{service}", problem.split(":", 1)[1].strip())
    return env_of


def check_companions(r: Render, kafka_partitions: int | None) -> dict:
    """Service, HPA and PDB of each Deployment. Returns {service name: its http port}."""
    service_ports = {}
    for name in DEPLOYMENTS:
        dep = r.get("Deployment", name)
        if dep is None:
            continue
        pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
        container_port = next(
            (
                http_port(c)
                for c in dep["spec"]["template"]["spec"]["containers"]
                if c["name"] == name
            ),
            None,
        )
        svc = r.get("Service", name)
        if svc is None:
            r.problem(f"Service/{name}", "missing")
        else:
            if not svc["spec"].get("selector") or not selector_matches(
                {"matchLabels": svc["spec"]["selector"]}, pod_labels
            ):
                r.problem(where(svc), f"its selector does not select Deployment/{name}'s pods")
            http = [p for p in svc["spec"].get("ports") or [] if p.get("name") == "http"]
            if len(http) != 1 or http[0].get("targetPort") not in ("http", container_port):
                r.problem(where(svc), "no port named http targeting the pods' http port")
            else:
                service_ports[name] = http[0]["port"]
        hpa = r.get("HorizontalPodAutoscaler", name)
        if hpa is None:
            r.problem(f"HorizontalPodAutoscaler/{name}", "missing")
        else:
            spec = hpa["spec"]
            if hpa["apiVersion"] != "autoscaling/v2":
                r.problem(where(hpa), "not autoscaling/v2")
            ref = spec.get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name")) != ("Deployment", name):
                r.problem(where(hpa), f"does not scale Deployment/{name}")
            if not any(
                m.get("type") == "Resource"
                and m["resource"]["name"] == "cpu"
                and m["resource"]["target"].get("type") == "Utilization"
                for m in spec.get("metrics") or []
            ):
                r.problem(where(hpa), "no CPU utilization target")
            low, high = spec.get("minReplicas", 1), spec["maxReplicas"]
            if not 1 <= low <= high:
                r.problem(
                    where(hpa), f"minReplicas {low} and maxReplicas {high} are not 1 ≤ min ≤ max"
                )
            if name == "imagizer" and kafka_partitions and high > kafka_partitions:
                r.problem(
                    where(hpa),
                    f"maxReplicas {high} exceeds the job topic's {kafka_partitions} partitions: the extra consumers would idle",
                )
        pdb = r.get("PodDisruptionBudget", name)
        if pdb is None:
            r.problem(f"PodDisruptionBudget/{name}", "missing")
        else:
            if not selector_matches(pdb["spec"].get("selector"), pod_labels):
                r.problem(where(pdb), f"does not select Deployment/{name}'s pods")
            min_available = pdb["spec"].get("minAvailable")
            if (
                isinstance(min_available, int)
                and hpa is not None
                and min_available >= hpa["spec"].get("minReplicas", 1)
            ):
                r.problem(
                    where(pdb),
                    f"minAvailable {min_available} with {hpa['spec'].get('minReplicas', 1)} replicas blocks every node drain",
                )
    return service_ports


def check_history_url(r: Render, env_of: dict, service_ports: dict) -> None:
    url = (env_of.get("figalize") or {}).get("HISTORY_APPEND_URL")
    if not url:
        r.problem("Deployment/figalize", "HISTORY_APPEND_URL is not set")
        return
    parsed = urlparse(url)
    host = (parsed.hostname or "").split(".")[0]
    if (
        host != "history"
        or parsed.port != service_ports.get("history")
        or parsed.path != "/api/append/"
    ):
        r.problem(
            "Deployment/figalize",
            f"HISTORY_APPEND_URL {url} is not the history Service's http port ({service_ports.get('history')}) at /api/append/",
        )


# --- network policies ---------------------------------------------------------------------------


def check_network_policies(r: Render, home: str, kafka_cluster: str | None) -> None:
    policies = r.of_kind("NetworkPolicy")
    ns_doc = r.of_kind("Namespace")
    home_labels = (ns_doc[0]["metadata"].get("labels") or {}) if ns_doc else {}
    if not any(
        p["spec"].get("podSelector") == {}
        and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        r.problem("NetworkPolicy", "no default deny of ingress and egress for every pod")

    ours = {}
    for name in DEPLOYMENTS:
        dep = r.get("Deployment", name)
        if dep is None:
            continue
        ports = {}
        for c in dep["spec"]["template"]["spec"]["containers"]:
            for p in c.get("ports") or []:
                if "name" in p:
                    ports[p["name"]] = p["containerPort"]
        ours[name] = endpoint(
            name, home, home_labels, dep["spec"]["template"]["metadata"].get("labels") or {}, ports
        )
    ours["acme-solver"] = endpoint(
        "acme-solver",
        home,
        home_labels,
        {"acme.cert-manager.io/http01-solver": "true"},
        {"http": 8089},
    )
    ours["other-pod"] = endpoint(
        "other-pod", home, home_labels, {"app.kubernetes.io/name": "debug"}
    )
    outside = {
        "ingress-nginx": endpoint(
            "ingress-nginx",
            "ingress-nginx",
            {},
            {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "controller",
            },
        ),
        "ingress-nginx-other": endpoint(
            "ingress-nginx-other",
            "ingress-nginx",
            {},
            {
                "app.kubernetes.io/name": "ingress-nginx",
                "app.kubernetes.io/component": "admission-webhook",
            },
        ),
        "prometheus": endpoint(
            "prometheus",
            "monitoring",
            {},
            {
                "app.kubernetes.io/name": "prometheus",
                "prometheus": "kube-prometheus-stack-prometheus",
            },
        ),
        "grafana": endpoint("grafana", "monitoring", {}, {"app.kubernetes.io/name": "grafana"}),
        "kube-dns": endpoint("kube-dns", "kube-system", {}, {"k8s-app": "kube-dns"}),
        "kafka": endpoint(
            "kafka",
            KAFKA_NAMESPACE,
            {},
            {
                "strimzi.io/cluster": kafka_cluster or "?",
                "strimzi.io/kind": "Kafka",
                "strimzi.io/name": f"{kafka_cluster}-kafka",
            },
        ),
        "elsewhere": endpoint("elsewhere", "default", {}, {"app": "elsewhere"}),
    }
    everyone = {**ours, **outside}
    ports = [
        (53, "UDP"),
        (53, "TCP"),
        (443, "TCP"),
        (5432, "TCP"),
        (8001, "TCP"),
        (8002, "TCP"),
        (8003, "TCP"),
        (8080, "TCP"),
        (8089, "TCP"),
        (9092, "TCP"),
    ]

    expected = set()
    for name in DEPLOYMENTS:
        if name in ours:
            port = ours[name].named_port("http")
            expected.add(("ingress-nginx", name, port, "TCP"))
            expected.add(("prometheus", name, port, "TCP"))
    expected.add(("ingress-nginx", "acme-solver", 8089, "TCP"))
    expected.add(
        (
            "figalize",
            "history",
            ours["history"].named_port("http") if "history" in ours else 8001,
            "TCP",
        )
    )
    expected.add(("figalize", "kafka", 9092, "TCP"))
    expected.add(("imagizer", "kafka", 9092, "TCP"))
    for name in ours:
        expected.add((name, "kube-dns", 53, "UDP"))
        expected.add((name, "kube-dns", 53, "TCP"))

    actual = set()
    for source_name, source in everyone.items():
        for destination_name, destination in everyone.items():
            if source_name == destination_name or (
                source.namespace != home and destination.namespace != home
            ):
                continue
            for port, protocol in ports:
                if allowed(policies, source, destination, port, protocol, home):
                    actual.add((source_name, destination_name, port, protocol))
    for flow in sorted(actual - expected, key=str):
        r.problem(
            "NetworkPolicy",
            f"allows {flow[0]} → {flow[1]} on {flow[2]}/{flow[3]}, which the design does not",
        )
    for flow in sorted(expected - actual, key=str):
        r.problem("NetworkPolicy", f"does not allow {flow[0]} → {flow[1]} on {flow[2]}/{flow[3]}")

    # Managed services outside the cluster: which pods reach an ipBlock, on which port.
    want_external = {"history": {(5432, "TCP")}, "imagizer": {(443, "TCP")}}
    for name, pod in ours.items():
        reach = set()
        for policy in policies_selecting(policies, pod, "Egress"):
            for rule in policy["spec"].get("egress") or []:
                peers = rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
                blocks = [p["ipBlock"] for p in peers if "ipBlock" in p]
                for block in blocks:
                    try:
                        ipaddress.ip_network(block["cidr"])
                        for other in block.get("except") or []:
                            ipaddress.ip_network(other)
                    except ValueError as err:
                        r.problem(where(policy), f"ipBlock {block}: {err}")
                    for entry in rule.get("ports") or [{"protocol": "TCP", "port": "any"}]:
                        reach.add((entry.get("port"), entry.get("protocol", "TCP")))
        if reach != want_external.get(name, set()):
            r.problem(
                "NetworkPolicy",
                f"{name} may reach addresses outside the cluster on {sorted(reach, key=str) or 'no port'}, not {sorted(want_external.get(name, set())) or 'none'}",
            )
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            if any("ipBlock" in p for p in rule.get("from") or []):
                r.problem(
                    where(policy),
                    "admits traffic by address: the design's callers are all in the cluster",
                )


# --- ingress ------------------------------------------------------------------------------------


def path_matches(path_type: str, rule_path: str, request: str) -> int:
    """ingress-nginx's match: Exact is exact; Prefix matches whole path elements. Returns the
    length of the match, 0 for none; Exact wins over any Prefix."""
    if path_type == "Exact":
        return 10**6 if request == rule_path else 0
    prefix = rule_path.rstrip("/")
    if prefix == "" or request == prefix or request.startswith(prefix + "/"):
        return len(prefix) + 1
    return 0


def check_ingress(r: Render, service_ports: dict) -> None:
    ingresses = r.of_kind("Ingress")
    if not ingresses:
        r.problem("Ingress", "none")
        return
    hosts = set()
    routes = []  # (path type, path, service, ingress)
    for ing in ingresses:
        w = where(ing)
        spec = ing["spec"]
        annotations = ing["metadata"].get("annotations") or {}
        if spec.get("ingressClassName") != "nginx":
            r.problem(w, "ingressClassName is not nginx")
        if annotations.get("nginx.ingress.kubernetes.io/proxy-body-size") != "16k":
            r.problem(w, "proxy-body-size is not 16k")
        for rule in spec.get("rules") or []:
            hosts.add(rule.get("host"))
            for p in rule["http"]["paths"]:
                backend = p["backend"]["service"]
                routes.append((p["pathType"], p["path"], backend["name"], ing))
                port = backend["port"].get("name") or backend["port"].get("number")
                if backend["name"] not in service_ports or port not in (
                    "http",
                    service_ports.get(backend["name"]),
                ):
                    r.problem(
                        w,
                        f"{p['path']} goes to {backend['name']}:{port}, which is no Service's http port",
                    )
    if len(hosts) != 1 or None in hosts:
        r.problem("Ingress", f"the Ingresses do not share one host: {sorted(map(str, hosts))}")
    host = next(iter(hosts)) if hosts else None

    with_tls = [i for i in ingresses if i["spec"].get("tls")]
    if len(with_tls) != 1:
        r.problem(
            "Ingress",
            f"expected exactly one Ingress with TLS (one certificate), found {len(with_tls)}",
        )
    for ing in with_tls:
        tls = ing["spec"]["tls"]
        if not any(host in (t.get("hosts") or []) and t.get("secretName") for t in tls):
            r.problem(where(ing), f"TLS does not cover {host} with a secretName")
        issuer = (ing["metadata"].get("annotations") or {}).get("cert-manager.io/cluster-issuer")
        if not issuer or r.get("ClusterIssuer", issuer) is None:
            r.problem(
                where(ing),
                f"cert-manager.io/cluster-issuer {issuer!r} names no ClusterIssuer of the manifests",
            )

    def route(request: str):
        # nginx matches locations on the normalized path (dot segments resolved, slashes merged).
        normalized = posixpath.normpath(request) + (
            "/" if request.endswith("/") and request != "/" else ""
        )
        request = normalized.replace("//", "/")
        best = max(routes, key=lambda x: path_matches(x[0], x[1], request), default=None)
        if best is None or path_matches(best[0], best[1], request) == 0:
            return None, None
        return best[2], best[3]

    table = {
        "/": "frontend",
        "/index.html": "frontend",
        "/app.js": "frontend",
        "/fonts/lobster.woff2": "frontend",
        "/api/figalize/": "figalize",
        "/api/figalize/openapi.json": "figalize",
        "/api/figalize/docs": "figalize",
        "/api/getschemas/": "figalize",
        "/api/gethistory/": "history",
        "/api/history/count": "history",
        "/api/history/stream": "history",
        "/api/history/docs": "history",
        "/api/getimageurl/": "imagizer",
        "/api/imagizer/openapi.json": "imagizer",
        "/api/imagizer/docs": "imagizer",
    }
    for request, service in table.items():
        got, _ = route(request)
        if got != service:
            r.problem("Ingress", f"{request} goes to {got}, not {service}")
    for request in (
        "/api/healthz/",
        "/api/livez/",
        "/metrics",
        "/api/other/",
        "/api/figalize/../healthz/",
    ):
        got, _ = route(request)
        if got in SERVICES:
            r.problem("Ingress", f"{request} reaches {got}: health and metrics are not public")
    # history's appends are internal: figalize calls history directly, the page never appends.
    for request in ("/api/append/", "/api/append/batch/"):
        got, ing = route(request)
        if got in SERVICES:
            r.problem(
                where(ing), f"{request} reaches {got}: the appends are internal, not public"
            )

    # Every Ingress limits each client address (so every public path is limited; ingress-nginx
    # applies an object's annotations to its own paths only).
    def positive(ing: dict, annotation: str) -> int | None:
        value = (ing["metadata"].get("annotations") or {}).get(
            f"nginx.ingress.kubernetes.io/{annotation}"
        )
        return int(value) if value is not None and str(value).isdigit() and int(value) > 0 else None

    rps_of = {}
    for ing in ingresses:
        annotations = ing["metadata"].get("annotations") or {}
        rps = annotations.get("nginx.ingress.kubernetes.io/limit-rps")
        rps_of[where(ing)] = positive(ing, "limit-rps")
        if rps_of[where(ing)] is None:
            r.problem(
                where(ing),
                f"limit-rps {rps!r} is not a positive number: its paths are not rate-limited per client address",
            )
        multiplier = annotations.get("nginx.ingress.kubernetes.io/limit-burst-multiplier")
        if multiplier is not None and positive(ing, "limit-burst-multiplier") is None:
            r.problem(where(ing), f"limit-burst-multiplier {multiplier!r} is not a positive number")

    # POST /api/figalize/ has a limit of its own, on an Ingress of that path alone (its
    # documentation under /api/figalize/ takes the common limit), no looser than the rest.
    _, figalize_ingress = route("/api/figalize/")
    _, main_ingress = route("/")
    if figalize_ingress is None or figalize_ingress is main_ingress:
        r.problem("Ingress", "POST /api/figalize/ has no Ingress, and rate limit, of its own")
    else:
        paths = [
            (p["pathType"], p["path"])
            for rule in figalize_ingress["spec"]["rules"]
            for p in rule["http"]["paths"]
        ]
        if paths != [("Exact", "/api/figalize/")]:
            r.problem(
                where(figalize_ingress),
                f"the Ingress of POST /api/figalize/'s rate limit has paths {paths}, not exactly /api/figalize/",
            )
        own = rps_of.get(where(figalize_ingress))
        common = rps_of.get(where(main_ingress)) if main_ingress is not None else None
        if own is not None and common is not None and own > common:
            r.problem(
                where(figalize_ingress),
                f"limit-rps {own} for POST /api/figalize/ is looser than the other paths' {common}",
            )
    _, stream_ingress = route("/api/history/stream")
    if stream_ingress is not None:
        annotations = stream_ingress["metadata"].get("annotations") or {}
        if annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
            r.problem(where(stream_ingress), "serves /api/history/stream with proxy buffering on")
        for i in ingresses:
            if (
                i is not stream_ingress
                and (i["metadata"].get("annotations") or {}).get(
                    "nginx.ingress.kubernetes.io/proxy-buffering"
                )
                == "off"
            ):
                r.problem(where(i), "turns proxy buffering off beyond the stream")


# --- custom resources ---------------------------------------------------------------------------


def allowed_keys(
    r: Render, w: str, what: str, mapping: dict, keys: set, required: set = frozenset()
) -> None:
    if not isinstance(mapping, dict):
        r.problem(w, f"{what} is not a mapping")
        return
    for key in sorted(set(mapping) - keys):
        r.problem(w, f"{what}: unknown field {key}")
    for key in sorted(set(required) - set(mapping)):
        r.problem(w, f"{what}: missing {key}")


DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
METADATA = {"name", "namespace", "labels", "annotations"}


def check_selector_shape(r: Render, w: str, what: str, selector) -> None:
    allowed_keys(r, w, what, selector, {"matchLabels", "matchExpressions"})
    for e in (selector or {}).get("matchExpressions") or []:
        allowed_keys(
            r, w, f"{what}.matchExpressions", e, {"key", "operator", "values"}, {"key", "operator"}
        )
        if e.get("operator") not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            r.problem(w, f"{what}: unknown operator {e.get('operator')}")


def check_custom_resources(r: Render) -> tuple[str | None, dict]:
    """Returns the Kafka cluster the topics belong to and {topic name: partitions}."""
    for doc in r.docs:
        if group_of(doc) in CUSTOM_GROUPS:
            allowed_keys(
                r,
                where(doc),
                "top level",
                doc,
                {"apiVersion", "kind", "metadata", "spec"},
                {"apiVersion", "kind", "metadata", "spec"},
            )
            allowed_keys(r, where(doc), "metadata", doc["metadata"], METADATA, {"name"})
            known = {
                ("monitoring.coreos.com/v1", "PodMonitor"),
                ("monitoring.coreos.com/v1", "PrometheusRule"),
                ("kafka.strimzi.io/v1", "KafkaTopic"),
                ("cert-manager.io/v1", "ClusterIssuer"),
            }
            if (doc["apiVersion"], doc["kind"]) not in known:
                r.problem(
                    where(doc),
                    f"{doc['apiVersion']} {doc['kind']} is a custom resource this check does not know",
                )

    # PodMonitor: the file of observability/, selecting the three services' pods.
    monitors = r.of_kind("PodMonitor")
    if len(monitors) != 1:
        r.problem("PodMonitor", f"expected one, found {len(monitors)}")
    for pm in monitors:
        w = where(pm)
        spec = pm["spec"]
        allowed_keys(
            r,
            w,
            "spec",
            spec,
            {
                "selector",
                "podMetricsEndpoints",
                "namespaceSelector",
                "jobLabel",
                "podTargetLabels",
                "sampleLimit",
            },
            {"selector", "podMetricsEndpoints"},
        )
        check_selector_shape(r, w, "spec.selector", spec.get("selector"))
        for endpoint_ in spec.get("podMetricsEndpoints") or []:
            allowed_keys(
                r,
                w,
                "podMetricsEndpoints[]",
                endpoint_,
                {
                    "port",
                    "path",
                    "scheme",
                    "interval",
                    "scrapeTimeout",
                    "relabelings",
                    "metricRelabelings",
                    "honorLabels",
                },
                {"port", "path"},
            )
            for key in ("interval", "scrapeTimeout"):
                if key in endpoint_ and not DURATION.match(str(endpoint_[key])):
                    r.problem(w, f"{key} {endpoint_[key]!r} is not a duration")
            for relabeling in (endpoint_.get("relabelings") or []) + (
                endpoint_.get("metricRelabelings") or []
            ):
                allowed_keys(
                    r,
                    w,
                    "relabelings[]",
                    relabeling,
                    {
                        "sourceLabels",
                        "separator",
                        "targetLabel",
                        "regex",
                        "modulus",
                        "replacement",
                        "action",
                    },
                )
        source = yaml.safe_load(PODMONITOR.read_text(encoding="utf-8"))
        if spec != source["spec"]:
            r.problem(
                w,
                f"spec differs from {PODMONITOR.relative_to(ROOT)}: regenerate with ci/generate-k8s-monitoring.py",
            )
        for name in DEPLOYMENTS:
            dep = r.get("Deployment", name)
            if dep is None:
                continue
            selected = selector_matches(
                spec.get("selector"), dep["spec"]["template"]["metadata"].get("labels") or {}
            )
            if selected != (name in SERVICES):
                r.problem(w, f"{'selects' if selected else 'does not select'} the {name} pods")

    # PrometheusRules: exactly the groups of observability/prometheus/rules/*.yml.
    source_groups = {}
    for rules_file in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]:
            source_groups[group["name"]] = group
    rendered_groups = {}
    for rule in r.of_kind("PrometheusRule"):
        w = where(rule)
        allowed_keys(r, w, "spec", rule["spec"], {"groups"}, {"groups"})
        for group in rule["spec"].get("groups") or []:
            allowed_keys(
                r,
                w,
                "groups[]",
                group,
                {"name", "interval", "rules", "limit", "query_offset", "labels"},
                {"name", "rules"},
            )
            if group["name"] in rendered_groups:
                r.problem(w, f"group {group['name']} is defined twice")
            rendered_groups[group["name"]] = group
            for item in group.get("rules") or []:
                allowed_keys(
                    r,
                    w,
                    f"group {group['name']} rule",
                    item,
                    {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"},
                    {"expr"},
                )
                if ("alert" in item) == ("record" in item):
                    r.problem(
                        w, f"group {group['name']}: a rule needs exactly one of alert and record"
                    )
                if (
                    not isinstance(item.get("expr"), (str, int))
                    or not str(item.get("expr")).strip()
                ):
                    r.problem(w, f"group {group['name']}: an empty expr")
                for key in ("for", "keep_firing_for"):
                    if key in item and not DURATION.match(str(item[key])):
                        r.problem(
                            w, f"group {group['name']}: {key} {item[key]!r} is not a duration"
                        )
                for key in ("labels", "annotations"):
                    if not all(isinstance(v, str) for v in (item.get(key) or {}).values()):
                        r.problem(w, f"group {group['name']}: {key} values must be strings")
    if rendered_groups != source_groups:
        r.problem(
            "PrometheusRule",
            f"the groups differ from {RULES.relative_to(ROOT)}/*.yml: regenerate with ci/generate-k8s-monitoring.py",
        )

    # Dashboards: ConfigMaps labelled grafana_dashboard: "1" holding observability/'s files.
    wanted = {p.name: p.read_text(encoding="utf-8") for p in sorted(DASHBOARDS.glob("*.json"))}
    found = {}
    for cm in r.of_kind("ConfigMap"):
        if (cm["metadata"].get("labels") or {}).get("grafana_dashboard") == "1":
            for key, value in (cm.get("data") or {}).items():
                found[key] = value
                try:
                    json.loads(value)
                except ValueError:
                    r.problem(where(cm), f"{key} is not JSON")
    if found != wanted:
        r.problem(
            "ConfigMap",
            f"the dashboards labelled grafana_dashboard differ from {DASHBOARDS.relative_to(ROOT)}: regenerate with ci/generate-k8s-monitoring.py",
        )

    # KafkaTopics.
    clusters = set()
    topics = {}
    for topic in r.of_kind("KafkaTopic"):
        w = where(topic)
        cluster = (topic["metadata"].get("labels") or {}).get("strimzi.io/cluster")
        if not cluster:
            r.problem(w, "no strimzi.io/cluster label: no Topic Operator takes it")
        clusters.add(cluster)
        spec = topic["spec"]
        allowed_keys(
            r,
            w,
            "spec",
            spec,
            {"topicName", "partitions", "replicas", "config"},
            {"partitions", "replicas"},
        )
        for key in ("partitions", "replicas"):
            if not isinstance(spec.get(key), int) or spec[key] < 1:
                r.problem(w, f"{key} is not a positive integer")
        config = spec.get("config") or {}
        if not all(isinstance(v, (str, int, bool, float)) for v in config.values()):
            r.problem(w, "config values must be scalars")
        isr = config.get("min.insync.replicas")
        if (
            isinstance(isr, int)
            and isinstance(spec.get("replicas"), int)
            and isr > spec["replicas"]
        ):
            r.problem(
                w,
                f"min.insync.replicas {isr} exceeds replicas {spec['replicas']}: no write would succeed",
            )
        topics[spec.get("topicName", topic["metadata"]["name"])] = spec.get("partitions")
    if len(clusters) > 1:
        r.problem(
            "KafkaTopic", f"the topics name several Kafka clusters: {sorted(map(str, clusters))}"
        )

    # ClusterIssuers.
    for issuer in r.of_kind("ClusterIssuer"):
        w = where(issuer)
        acme = issuer["spec"].get("acme") or {}
        allowed_keys(r, w, "spec", issuer["spec"], {"acme"}, {"acme"})
        allowed_keys(
            r,
            w,
            "spec.acme",
            acme,
            {
                "server",
                "email",
                "privateKeySecretRef",
                "solvers",
                "skipTLSVerify",
                "preferredChain",
            },
            {"server", "privateKeySecretRef", "solvers"},
        )
        if acme.get("server") not in LETSENCRYPT:
            r.problem(
                w, f"server {acme.get('server')} is not Let's Encrypt's production or staging"
            )
        email = acme.get("email", "")
        if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) or email.endswith(".invalid"):
            r.problem(w, f"email {email!r} is not set by the overlay")
        if not (acme.get("privateKeySecretRef") or {}).get("name"):
            r.problem(w, "privateKeySecretRef has no name")
        solvers = acme.get("solvers") or []
        if not solvers or not all(
            ((s.get("http01") or {}).get("ingress") or {}).get("ingressClassName") == "nginx"
            for s in solvers
        ):
            r.problem(w, "the solvers are not HTTP-01 through ingress class nginx")
    return (next(iter(clusters)) if len(clusters) == 1 else None), topics


def check_kafka(r: Render, env_of: dict, cluster: str | None, topics: dict) -> None:
    for service in ("figalize", "imagizer"):
        values = env_of.get(service) or {}
        topic = values.get("KAFKA_TOPIC_NAME") or "figalized"
        dead_letter = values.get("KAFKA_DEAD_LETTER_TOPIC") or f"{topic}.dead-letter"
        wanted = [topic] if service == "figalize" else [topic, dead_letter]
        for name in wanted:
            if name not in topics:
                r.problem(
                    f"Deployment/{service}",
                    f"uses topic {name}, which no KafkaTopic provisions (KAFKA_CREATE_TOPICS=false)",
                )
        bootstrap = values.get("KAFKA_BOOTSTRAP") or ""
        hosts = {part.rsplit(":", 1)[0] for part in bootstrap.split(",") if part}
        expected = {
            f"{cluster}-kafka-bootstrap.{KAFKA_NAMESPACE}.svc",
            f"{cluster}-kafka-bootstrap.{KAFKA_NAMESPACE}.svc.cluster.local",
        }
        if not hosts or not hosts <= expected:
            r.problem(
                f"Deployment/{service}",
                f"KAFKA_BOOTSTRAP {bootstrap!r} is not the bootstrap Service of Kafka cluster {cluster} (the topics' strimzi.io/cluster)",
            )
    if "imagizer" in env_of:
        url = env_of["imagizer"].get("S3_PUBLIC_URL") or ""
        if env_of["imagizer"].get("S3_URL_MODE", "public") == "public" and not (
            url.startswith("https://") and url.endswith("/")
        ):
            r.problem(
                "Deployment/imagizer",
                f"S3_PUBLIC_URL {url!r} is not an https:// base URL ending in /: the Ingress does not serve /images/",
            )


def check(path: Path, docs: list[dict] | None = None) -> list[str]:
    r = Render(path, load(path) if docs is None else docs)
    home = check_namespace(r)
    cluster, topics = check_custom_resources(r)
    env_of = check_deployments(r)
    job_topic = (env_of.get("imagizer") or {}).get("KAFKA_TOPIC_NAME") or "figalized"
    service_ports = check_companions(r, topics.get(job_topic))
    check_history_url(r, env_of, service_ports)
    check_kafka(r, env_of, cluster, topics)
    check_ingress(r, service_ports)
    if home:
        check_network_policies(r, home, cluster)
    return r.problems


# --- self-test ----------------------------------------------------------------------------------


def _deployment(docs: list[dict], name: str) -> dict:
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name)


def _container(docs: list[dict], name: str) -> dict:
    return _deployment(docs, name)["spec"]["template"]["spec"]["containers"][0]


def _named(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _configmap_of(docs: list[dict], service: str, prefix: str) -> dict:
    """The ConfigMap (hash-suffixed name) a service's container takes its variables from."""
    for source in _container(docs, service).get("envFrom") or []:
        name = source.get("configMapRef", {}).get("name", "")
        if name.startswith(prefix):
            return _named(docs, "ConfigMap", name)
    raise KeyError(prefix)


def _schemes(docs: list[dict]) -> dict:
    volumes = _deployment(docs, "figalize")["spec"]["template"]["spec"]["volumes"]
    name = next(v["configMap"]["name"] for v in volumes if "configMap" in v)
    return _named(docs, "ConfigMap", name)


def _journal_volume(docs: list[dict]) -> dict:
    """The volume figalize's container mounts at JOURNAL_DIR."""
    path = _configmap_of(docs, "figalize", "figachechnaya-figalize")["data"]["JOURNAL_DIR"]
    name = next(
        m["name"] for m in _container(docs, "figalize")["volumeMounts"] if m["mountPath"] == path
    )
    volumes = _deployment(docs, "figalize")["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == name)


def _set_env(service: str, prefix: str, name: str, value: str):
    def mutate(docs):
        _configmap_of(docs, service, prefix)["data"][name] = value

    return mutate


def _remove_route(docs, path):
    ingress = _named(docs, "Ingress", "figachechnaya")
    for rule in ingress["spec"]["rules"]:
        rule["http"]["paths"] = [p for p in rule["http"]["paths"] if p["path"] != path]


def _add_route(docs, ingress_name, path_type, path, service):
    ingress = _named(docs, "Ingress", ingress_name)
    ingress["spec"]["rules"][0]["http"]["paths"].append(
        {
            "path": path,
            "pathType": path_type,
            "backend": {"service": {"name": service, "port": {"name": "http"}}},
        }
    )


# Ways to break a rendered overlay, each with words a resulting problem must contain.
MUTATIONS = [
    (
        "a writable root filesystem",
        lambda d: _container(d, "history")["securityContext"].update(readOnlyRootFilesystem=False),
        "readOnlyRootFilesystem",
    ),
    (
        "capabilities kept",
        lambda d: _container(d, "frontend")["securityContext"]["capabilities"].update(
            drop=["NET_RAW"]
        ),
        "drop ALL",
    ),
    (
        "no seccomp profile",
        lambda d: (
            _container(d, "imagizer")["securityContext"].pop("seccompProfile"),
            _deployment(d, "imagizer")["spec"]["template"]["spec"]["securityContext"].pop(
                "seccompProfile"
            ),
        ),
        "seccompProfile",
    ),
    (
        "privilege escalation allowed",
        lambda d: _container(d, "figalize")["securityContext"].pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    (
        "runAsNonRoot missing",
        lambda d: (
            _container(d, "history")["securityContext"].pop("runAsNonRoot"),
            _deployment(d, "history")["spec"]["template"]["spec"]["securityContext"].pop(
                "runAsNonRoot"
            ),
        ),
        "runAsNonRoot",
    ),
    (
        "readiness on the liveness path",
        lambda d: _container(d, "imagizer")["readinessProbe"]["httpGet"].update(path="/api/livez/"),
        "not /api/healthz/",
    ),
    (
        "no startup probe",
        lambda d: _container(d, "figalize").pop("startupProbe"),
        "no startupProbe",
    ),
    ("no limits", lambda d: _container(d, "frontend")["resources"].pop("limits"), "no limits"),
    (
        "no migrations before history",
        lambda d: _deployment(d, "history")["spec"]["template"]["spec"].pop("initContainers"),
        "no init container running `history migrate`",
    ),
    (
        "migrations on another database",
        lambda d: _deployment(d, "history")["spec"]["template"]["spec"]["initContainers"][0][
            "envFrom"
        ].pop(),
        "envFrom differs",
    ),
    (
        "a variable no binary reads",
        _set_env("figalize", "figachechnaya-common", "LOG_LEVEL", "debug"),
        "LOG_LEVEL",
    ),
    (
        "a container port off the port variable",
        lambda d: _container(d, "history")["ports"][0].update(containerPort=8011),
        "declares container port 8011",
    ),
    (
        "every key of a Secret as variables",
        lambda d: _container(d, "imagizer")["envFrom"].append(
            {"secretRef": {"name": "figachechnaya-s3"}}
        ),
        "envFrom takes every key",
    ),
    ("HOST on loopback", _set_env("history", "figachechnaya-common", "HOST", "127.0.0.1"), "HOST"),
    (
        "topics created by the services",
        _set_env("figalize", "figachechnaya-kafka", "KAFKA_CREATE_TOPICS", "true"),
        "KAFKA_CREATE_TOPICS",
    ),
    (
        "figalize appending to the wrong port",
        _set_env(
            "figalize",
            "figachechnaya-figalize",
            "HISTORY_APPEND_URL",
            "http://history:8002/api/append/",
        ),
        "HISTORY_APPEND_URL",
    ),
    (
        "a grace period shorter than the shutdown",
        lambda d: _deployment(d, "history")["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=10
        ),
        "terminationGracePeriodSeconds",
    ),
    (
        "schemes that drifted",
        lambda d: _schemes(d)["data"].update({"example.json": "{}"}),
        "differs from crates/figalize",
    ),
    (
        "figalize's journal on the read-only root",
        _set_env("figalize", "figachechnaya-figalize", "JOURNAL_DIR", "/var/lib/journal"),
        "no volume is mounted at JOURNAL_DIR",
    ),
    (
        "a journal volume smaller than the journal",
        lambda d: _journal_volume(d)["emptyDir"].update(sizeLimit="32Mi"),
        "sizeLimit 32Mi",
    ),
    (
        "one journal for every replica",
        lambda d: (
            _journal_volume(d).pop("emptyDir"),
            _journal_volume(d).update(persistentVolumeClaim={"claimName": "journal"}),
        ),
        "every replica shares",
    ),
    (
        "a replica count beside the autoscaler",
        lambda d: _deployment(d, "figalize")["spec"].update(replicas=2),
        "sets replicas",
    ),
    (
        "more imagizers than partitions",
        lambda d: _named(d, "HorizontalPodAutoscaler", "imagizer")["spec"].update(maxReplicas=9),
        "partitions",
    ),
    (
        "a namespace without the restricted standard",
        lambda d: _named(
            d, "Namespace", next(x["metadata"]["name"] for x in d if x["kind"] == "Namespace")
        )["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce"),
        "pod-security.kubernetes.io/enforce",
    ),
    (
        "a committed Secret",
        lambda d: d.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "figachechnaya-db", "namespace": d[0]["metadata"]["name"]},
                "stringData": {"DB_PASS": "x"},
            }
        ),
        "never committed",
    ),
    (
        "no default deny",
        lambda d: d.remove(_named(d, "NetworkPolicy", "default-deny")),
        "default deny",
    ),
    (
        "Prometheus's namespace let in whole",
        lambda d: _named(d, "NetworkPolicy", "from-prometheus")["spec"]["ingress"][0]["from"][
            0
        ].pop("podSelector"),
        "allows grafana",
    ),
    ("no DNS", lambda d: d.remove(_named(d, "NetworkPolicy", "dns")), "kube-dns on 53/UDP"),
    (
        "history open to any address",
        lambda d: _named(d, "NetworkPolicy", "history-egress")["spec"]["egress"][0].pop("ports"),
        "outside the cluster",
    ),
    (
        "a public health check",
        lambda d: _named(d, "Ingress", "figachechnaya")["spec"]["rules"][0]["http"]["paths"].append(
            {
                "path": "/api/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "history", "port": {"name": "http"}}},
            }
        ),
        "not public",
    ),
    (
        "a route missing",
        lambda d: _remove_route(d, "/api/gethistory/"),
        "/api/gethistory/ goes to frontend",
    ),
    (
        "the append route public",
        lambda d: _add_route(d, "figachechnaya", "Exact", "/api/append/", "history"),
        "/api/append/ reaches history",
    ),
    (
        "the batch route public",
        lambda d: _add_route(d, "figachechnaya", "Prefix", "/api/append/", "history"),
        "/api/append/batch/ reaches history",
    ),
    (
        "paths without a rate limit",
        lambda d: _named(d, "Ingress", "figachechnaya")["metadata"]["annotations"].pop(
            "nginx.ingress.kubernetes.io/limit-rps"
        ),
        "not rate-limited per client address",
    ),
    (
        "the stream without a rate limit",
        lambda d: _named(d, "Ingress", "figachechnaya-history-stream")["metadata"][
            "annotations"
        ].update({"nginx.ingress.kubernetes.io/limit-rps": "0"}),
        "limit-rps '0' is not a positive number",
    ),
    (
        "a burst multiplier ingress-nginx does not read",
        lambda d: _named(d, "Ingress", "figachechnaya")["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/limit-burst-multiplier": "two"}
        ),
        "limit-burst-multiplier 'two'",
    ),
    (
        "POST /api/figalize/ without a limit of its own",
        lambda d: d.remove(_named(d, "Ingress", "figachechnaya-figalize")),
        "no Ingress, and rate limit, of its own",
    ),
    (
        "figalize's documentation under figalize's limit",
        lambda d: _add_route(
            d, "figachechnaya-figalize", "Prefix", "/api/figalize/docs", "figalize"
        ),
        "not exactly /api/figalize/",
    ),
    (
        "figalize's limit looser than the other paths'",
        lambda d: _named(d, "Ingress", "figachechnaya-figalize")["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/limit-rps": "100000"}
        ),
        "looser than the other paths'",
    ),
    (
        "a buffered stream",
        lambda d: _named(d, "Ingress", "figachechnaya-history-stream")["metadata"][
            "annotations"
        ].pop("nginx.ingress.kubernetes.io/proxy-buffering"),
        "buffering on",
    ),
    (
        "an issuer that does not exist",
        lambda d: _named(d, "Ingress", "figachechnaya")["metadata"]["annotations"].update(
            {"cert-manager.io/cluster-issuer": "nobody"}
        ),
        "names no ClusterIssuer",
    ),
    (
        "the issuer's placeholder e-mail",
        lambda d: next(x for x in d if x["kind"] == "ClusterIssuer")["spec"]["acme"].update(
            email="hostmaster@example.invalid"
        ),
        "email",
    ),
    (
        "a topic outside the Kafka namespace",
        lambda d: next(x for x in d if x["kind"] == "KafkaTopic")["metadata"].update(
            namespace="elsewhere"
        ),
        "Topic Operator",
    ),
    (
        "a topic field Strimzi does not have",
        lambda d: next(x for x in d if x["kind"] == "KafkaTopic")["spec"].update(retention=1),
        "unknown field retention",
    ),
    (
        "the job topic not provisioned",
        lambda d: d.remove(
            next(
                x
                for x in d
                if x["kind"] == "KafkaTopic" and x["spec"].get("topicName") == "figalized"
            )
        ),
        "no KafkaTopic provisions",
    ),
    (
        "a PodMonitor field the operator does not have",
        lambda d: next(x for x in d if x["kind"] == "PodMonitor")["spec"]["podMetricsEndpoints"][
            0
        ].update(intervall="15s"),
        "unknown field intervall",
    ),
    (
        "an alert that is also a recording rule",
        lambda d: next(x for x in d if x["kind"] == "PrometheusRule")["spec"]["groups"][0]["rules"][
            0
        ].update(alert="X", record="y"),
        "exactly one of alert and record",
    ),
    (
        "a dashboard Grafana does not load",
        lambda d: next(
            x
            for x in d
            if x["kind"] == "ConfigMap"
            and "grafana_dashboard" in (x["metadata"].get("labels") or {})
        )["metadata"]["labels"].pop("grafana_dashboard"),
        "dashboards labelled grafana_dashboard differ",
    ),
]


def self_test(path: Path) -> int:
    docs = load(path)
    baseline = check(path, docs)
    if baseline:
        print(f"{path.name} has problems itself; fix them first:")
        print("\n".join(f"  {problem}" for problem in baseline))
        return 1
    failures = 0
    for title, mutate, words in MUTATIONS:
        broken = copy.deepcopy(docs)
        mutate(broken)
        problems = check(path, broken)
        caught = any(words in problem for problem in problems)
        failures += not caught
        print(
            f"{'caught' if caught else 'MISSED'}: {title}"
            + ("" if caught else f" (expected a problem with {words!r}; got {problems})")
        )
    print(f"{len(MUTATIONS) - failures} passed, {failures} failed")
    return 1 if failures else 0


def split(rendered: Path, builtin_out: Path, custom_out: Path) -> None:
    docs = load(rendered)
    builtin = [d for d in docs if group_of(d) not in CUSTOM_GROUPS]
    custom = [d for d in docs if group_of(d) in CUSTOM_GROUPS]
    builtin_out.write_text(yaml.safe_dump_all(builtin, sort_keys=False), encoding="utf-8")
    custom_out.write_text(yaml.safe_dump_all(custom, sort_keys=False), encoding="utf-8")
    print(
        f"{rendered.name}: {len(builtin)} objects of Kubernetes' API, {len(custom)} custom resources"
    )


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "split":
        split(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    if len(argv) == 2 and argv[0] == "self-test":
        return self_test(Path(argv[1]))
    if len(argv) >= 2 and argv[0] == "check":
        failed = False
        for name in argv[1:]:
            path = Path(name)
            problems = check(path)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                failed = True
                print(f"{path.name}: {len(problems)} problem(s)", file=sys.stderr)
            else:
                print(f"{path.name}: {len(load(path))} objects: all checks passed")
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
