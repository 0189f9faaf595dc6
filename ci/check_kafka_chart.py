#!/usr/bin/env python3
"""Checks the Kafka cluster chart of terraform/modules/kafka/ against what kubernetes/ expects.

    python3 ci/check_kafka_chart.py check DEFAULT_RENDER SINGLE_RENDER
    python3 ci/check_kafka_chart.py self-test DEFAULT_RENDER

DEFAULT_RENDER is `helm template` of terraform/modules/kafka/chart in namespace kafka with its
default values, SINGLE_RENDER the same with `--set replicas=1` (ci/check-terraform.sh makes
both). Needs PyYAML and python-hcl2. `check` fails unless:

- each render holds exactly a Kafka and a KafkaNodePool of the kafka.strimzi.io/v1 API (Strimzi
  0.49 or newer) in the module's namespace (kafka);
- the Kafka is named as the module's cluster_name (figachechnaya), runs the chart's Kafka
  version, has exactly one listener, `plain`: internal, on 9092, without TLS or authentication
  (the services' librdkafka has neither); creates no topic on its own, never elects an unclean
  leader, replicates topics created without a replication factor (and Kafka's own) on min(3,
  nodes) nodes with one fewer in sync (at least 1); runs the Topic Operator and no User
  Operator;
- the KafkaNodePool is labelled strimzi.io/cluster with that name, has the render's node count,
  the roles controller and broker, one persistent-claim volume of the chart's size and class
  that holds the KRaft metadata and outlives the cluster (deleteClaim: false), and CPU and
  memory requests and limits;
- the defaults agree: the module's (terraform/modules/kafka/variables.tf), the chart's
  (values.yaml, Chart.yaml's appVersion) and the production root's
  (terraform/environments/prod/variables.tf): cluster name, Kafka version, node count, volume,
  resources, listener port; the Kafka version is one the module's Strimzi release supports;
- the module's bootstrap_servers output is <cluster>-kafka-bootstrap.<namespace>.svc:<port>,
  and so is KAFKA_BOOTSTRAP in kubernetes/base/config/kafka.env;
- every KafkaTopic of kubernetes/base/kafkatopics.yaml is in that namespace, labelled with that
  cluster, has no more replicas than the default node count and fewer in sync than replicas
  (so a node can be down without refusing writes).

`self-test` breaks the default render in known ways and fails unless `check` catches each one.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "terraform/modules/kafka"
CHART = MODULE / "chart"
PROD = ROOT / "terraform/environments/prod"
TOPICS = ROOT / "kubernetes/base/kafkatopics.yaml"
KAFKA_ENV = ROOT / "kubernetes/base/config/kafka.env"

API_VERSION = "kafka.strimzi.io/v1"
# The Kafka versions each Strimzi minor release supports (its kafka-versions.yaml). A Strimzi
# upgrade adds its line here after reading the release notes.
STRIMZI_KAFKA_VERSIONS = {
    (0, 49): {"4.0.0", "4.0.1", "4.1.0", "4.1.1"},
}


def unquote(value):
    """python-hcl2's value with the quotes of its string literals removed, recursively."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


def hcl_blocks(path: Path, kind: str) -> dict:
    """{label: body} of a file's top-level blocks of one kind with one label."""
    with path.open(encoding="utf-8") as handle:
        document = hcl2.load(handle)
    found = {}
    for entry in document.get(kind, []):
        for label, body in entry.items():
            if not label.startswith("__"):
                found[unquote(label)] = body
    return found


def defaults(path: Path) -> dict:
    return {
        name: unquote(body["default"])
        for name, body in hcl_blocks(path, "variable").items()
        if "default" in body
    }


def module_locals(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        document = hcl2.load(handle)
    found = {}
    for entry in document.get("locals", []):
        found.update(unquote(entry))
    return found


def load_yaml_all(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


class Expected:
    """What the renders must say, from the module's, the chart's and the root's defaults."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        module = defaults(MODULE / "variables.tf")
        root = defaults(PROD / "variables.tf")
        values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
        port = module_locals(MODULE / "main.tf").get("port")

        self.namespace = module.get("namespace")
        self.cluster = module.get("cluster_name")
        self.kafka_version = module.get("kafka_version")
        self.replicas = module.get("replicas")
        self.storage_size = module.get("storage_size")
        self.storage_class = module.get("storage_class")
        self.resources = module.get("resources")
        self.port = port

        if self.namespace != "kafka":
            self.problem(
                f"terraform/modules/kafka: namespace defaults to {self.namespace!r}, not kafka "
                "(the namespace of kubernetes/'s KafkaTopics and network policies)"
            )
        storage = values.get("storage") or {}
        listener = values.get("listener") or {}
        # (what, the module's default, the chart's, the root's or None where it has none)
        agree = [
            ("cluster name", self.cluster, values.get("clusterName"), None),
            (
                "Kafka version",
                self.kafka_version,
                values.get("kafkaVersion"),
                root.get("kafka_version"),
            ),
            ("node count", self.replicas, values.get("replicas"), root.get("kafka_replicas")),
            ("volume size", self.storage_size, storage.get("size"), root.get("kafka_storage_size")),
            ("volume class", self.storage_class, storage.get("class"), None),
            ("resources", self.resources, values.get("resources"), root.get("kafka_resources")),
            ("listener port", self.port, listener.get("port"), None),
        ]
        for what, in_module, in_chart, in_root in agree:
            if in_module != in_chart:
                self.problem(
                    f"{what}: the module's default {in_module!r} differs from the chart's "
                    f"values.yaml {in_chart!r}"
                )
            if in_root is not None and in_root != in_module:
                self.problem(
                    f"{what}: the production root's default {in_root!r} differs from the "
                    f"module's {in_module!r}"
                )
        if str(chart.get("appVersion")) != self.kafka_version:
            self.problem(
                f"chart/Chart.yaml: appVersion {chart.get('appVersion')!r} is not the Kafka "
                f"version {self.kafka_version!r}"
            )

        strimzi = module.get("strimzi_chart_version") or ""
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", strimzi)
        if not match or (int(match[1]), int(match[2])) < (0, 49):
            self.problem(
                f"strimzi_chart_version {strimzi!r}: the kafka.strimzi.io/v1 API needs Strimzi "
                "0.49.0 or later"
            )
        else:
            supported = STRIMZI_KAFKA_VERSIONS.get((int(match[1]), int(match[2])))
            if supported is None:
                self.problem(
                    f"Strimzi {strimzi}: add the Kafka versions it supports to "
                    "STRIMZI_KAFKA_VERSIONS in ci/check_kafka_chart.py"
                )
            elif self.kafka_version not in supported:
                self.problem(
                    f"Kafka {self.kafka_version} is not one Strimzi {strimzi} supports "
                    f"({', '.join(sorted(supported))})"
                )

        output = unquote(hcl_blocks(MODULE / "outputs.tf", "output").get("bootstrap_servers", {}))
        wanted = (
            "${var.cluster_name}-kafka-bootstrap.${helm_release.cluster.namespace}"
            ".svc:${local.port}"
        )
        if (output or {}).get("value") != wanted:
            self.problem(
                f"terraform/modules/kafka/outputs.tf: bootstrap_servers is "
                f"{(output or {}).get('value')!r}, not {wanted!r}"
            )
        self.bootstrap = f"{self.cluster}-kafka-bootstrap.{self.namespace}.svc:{self.port}"

    def problem(self, message: str) -> None:
        self.problems.append(message)


def check_render(docs: list[dict], expected: Expected, nodes: int, name: str) -> list[str]:
    """Problems of one render of the chart with `nodes` Kafka nodes."""
    problems: list[str] = []

    def problem(message: str) -> None:
        problems.append(f"{name}: {message}")

    by_kind: dict[str, list[dict]] = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    if sorted(by_kind) != ["Kafka", "KafkaNodePool"] or any(len(v) != 1 for v in by_kind.values()):
        problem(
            "holds "
            + ", ".join(f"{len(by_kind[k])} {k}" for k in sorted(by_kind, key=str))
            + ", not exactly one Kafka and one KafkaNodePool"
        )
    for doc in docs:
        what = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        if doc.get("apiVersion") != API_VERSION:
            problem(f"{what}: apiVersion {doc.get('apiVersion')!r}, not {API_VERSION}")
        if doc.get("metadata", {}).get("namespace") != expected.namespace:
            problem(f"{what}: not in namespace {expected.namespace}")

    replication = min(3, nodes)
    in_sync = max(1, replication - 1)
    for kafka in by_kind.get("Kafka", []):
        if kafka["metadata"].get("name") != expected.cluster:
            kafka_name = kafka["metadata"].get("name")
            problem(f"the Kafka is named {kafka_name!r}, not {expected.cluster!r}")
        spec = kafka.get("spec") or {}
        if "zookeeper" in spec:
            problem("the Kafka has a zookeeper section: Strimzi runs KRaft only")
        broker = spec.get("kafka") or {}
        for removed in ("replicas", "storage"):
            if removed in broker:
                problem(f"spec.kafka.{removed} is not in the v1 API: it belongs to the node pool")
        if str(broker.get("version")) != expected.kafka_version:
            problem(f"Kafka version {broker.get('version')!r}, not {expected.kafka_version!r}")
        listeners = broker.get("listeners") or []
        if len(listeners) != 1:
            problem(f"{len(listeners)} listeners, not exactly the plaintext one")
        for listener in listeners:
            wanted = {"name": "plain", "port": expected.port, "type": "internal", "tls": False}
            got = {key: listener.get(key) for key in wanted}
            if got != wanted:
                problem(f"listener {got}, not {wanted}")
            if listener.get("authentication"):
                problem(
                    f"listener {listener.get('name')} has authentication: the services have no SASL"
                )
        config = broker.get("config") or {}
        wanted_config = {
            "auto.create.topics.enable": False,
            "unclean.leader.election.enable": False,
            "default.replication.factor": replication,
            "min.insync.replicas": in_sync,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": in_sync,
        }
        for key, value in wanted_config.items():
            if config.get(key) != value:
                problem(f"config {key} is {config.get(key)!r}, not {value!r} ({nodes} node(s))")
        entity = spec.get("entityOperator") or {}
        if not isinstance(entity.get("topicOperator"), dict):
            problem(
                "no Topic Operator (entityOperator.topicOperator): the KafkaTopics would not "
                "become topics"
            )
        if "userOperator" in entity:
            problem("a User Operator: there are no KafkaUsers")
        annotations = kafka["metadata"].get("annotations") or {}
        for annotation in ("strimzi.io/kraft", "strimzi.io/node-pools"):
            if annotation in annotations:
                problem(f"annotation {annotation}: Strimzi 0.48 and later ignore it")

    for pool in by_kind.get("KafkaNodePool", []):
        labels = pool["metadata"].get("labels") or {}
        if labels.get("strimzi.io/cluster") != expected.cluster:
            problem(
                "the KafkaNodePool's strimzi.io/cluster label is "
                f"{labels.get('strimzi.io/cluster')!r}, not {expected.cluster!r}"
            )
        spec = pool.get("spec") or {}
        if spec.get("replicas") != nodes:
            problem(f"the KafkaNodePool has {spec.get('replicas')!r} replicas, not {nodes}")
        if sorted(spec.get("roles") or []) != ["broker", "controller"]:
            problem(
                f"the KafkaNodePool's roles are {spec.get('roles')!r}, not controller and broker"
            )
        storage = spec.get("storage") or {}
        volumes = storage.get("volumes") or []
        if storage.get("type") != "jbod" or len(volumes) != 1:
            problem("the KafkaNodePool's storage is not JBOD with one volume")
        for volume in volumes:
            wanted = {
                "type": "persistent-claim",
                "size": expected.storage_size,
                "class": expected.storage_class or None,
                "deleteClaim": False,
                "kraftMetadata": "shared",
            }
            got = {key: volume.get(key) for key in wanted}
            if got != wanted:
                problem(f"volume {got}, not {wanted}")
        resources = spec.get("resources") or {}
        for part in ("requests", "limits"):
            quantities = resources.get(part) or {}
            if not (quantities.get("cpu") and quantities.get("memory")):
                problem(f"the KafkaNodePool has no cpu and memory {part}")
        if resources != expected.resources:
            problem(f"the KafkaNodePool's resources {resources!r} are not {expected.resources!r}")
    return problems


def check_topics(expected: Expected) -> list[str]:
    problems = []
    where = TOPICS.relative_to(ROOT)
    topics = [doc for doc in load_yaml_all(TOPICS) if doc.get("kind") == "KafkaTopic"]
    if not topics:
        problems.append(f"{where}: no KafkaTopic")
    for topic in topics:
        name = topic.get("metadata", {}).get("name")
        labels = topic.get("metadata", {}).get("labels") or {}
        spec = topic.get("spec") or {}
        replicas = spec.get("replicas")
        in_sync = (spec.get("config") or {}).get("min.insync.replicas")
        if topic.get("metadata", {}).get("namespace") != expected.namespace:
            problems.append(f"{where}: {name} is not in namespace {expected.namespace}")
        if labels.get("strimzi.io/cluster") != expected.cluster:
            problems.append(
                f"{where}: {name} is not labelled strimzi.io/cluster: {expected.cluster}"
            )
        if not isinstance(replicas, int) or replicas > expected.replicas:
            problems.append(
                f"{where}: {name} has {replicas!r} replicas, more than the {expected.replicas} "
                "Kafka nodes of the default"
            )
        if not isinstance(in_sync, int) or not isinstance(replicas, int) or in_sync >= replicas:
            problems.append(
                f"{where}: {name} needs {in_sync!r} replicas in sync of {replicas!r}: a node "
                "down (a rolling update) would stop writes"
            )
    return problems


def check_bootstrap(expected: Expected) -> list[str]:
    bootstrap = env_file(KAFKA_ENV).get("KAFKA_BOOTSTRAP")
    if bootstrap != expected.bootstrap:
        return [
            f"{KAFKA_ENV.relative_to(ROOT)}: KAFKA_BOOTSTRAP is {bootstrap!r}, not the chart's "
            f"cluster {expected.bootstrap!r}"
        ]
    return []


def breaks(docs: list[dict]):
    """(description, broken copy of the default render) for the self-test."""

    def broken(description, change):
        copied = copy.deepcopy(docs)
        kafka = next(d for d in copied if d["kind"] == "Kafka")
        pool = next(d for d in copied if d["kind"] == "KafkaNodePool")
        change(copied, kafka, pool)
        return description, copied

    def set_listener(key, value):
        return lambda _, kafka, __: kafka["spec"]["kafka"]["listeners"][0].__setitem__(key, value)

    def set_config(key, value):
        return lambda _, kafka, __: kafka["spec"]["kafka"]["config"].__setitem__(key, value)

    yield broken("a TLS listener", set_listener("tls", True))
    yield broken("another port", set_listener("port", 9094))
    yield broken("an external listener", set_listener("type", "nodeport"))
    yield broken(
        "a second listener",
        lambda _, kafka, __: kafka["spec"]["kafka"]["listeners"].append(
            {"name": "tls", "port": 9093, "type": "internal", "tls": True}
        ),
    )
    yield broken(
        "SASL on the listener",
        set_listener("authentication", {"type": "scram-sha-512"}),
    )
    yield broken(
        "another cluster name",
        lambda _, kafka, __: kafka["metadata"].__setitem__("name", "my-cluster"),
    )
    yield broken(
        "the old API version",
        lambda _, kafka, __: kafka.__setitem__("apiVersion", "kafka.strimzi.io/v1beta2"),
    )
    yield broken(
        "another namespace",
        lambda _, __, pool: pool["metadata"].__setitem__("namespace", "default"),
    )
    yield broken(
        "a node pool of no cluster",
        lambda _, __, pool: pool["metadata"]["labels"].pop("strimzi.io/cluster"),
    )
    yield broken(
        "broker-only nodes",
        lambda _, __, pool: pool["spec"].__setitem__("roles", ["broker"]),
    )
    yield broken("one node fewer", lambda _, __, pool: pool["spec"].__setitem__("replicas", 2))
    yield broken(
        "volumes deleted with the cluster",
        lambda _, __, pool: pool["spec"]["storage"]["volumes"][0].__setitem__("deleteClaim", True),
    )
    yield broken(
        "ephemeral storage",
        lambda _, __, pool: pool["spec"]["storage"]["volumes"][0].__setitem__("type", "ephemeral"),
    )
    yield broken("no limits", lambda _, __, pool: pool["spec"]["resources"].pop("limits"))
    yield broken("topics created on first use", set_config("auto.create.topics.enable", True))
    yield broken("unclean leader election", set_config("unclean.leader.election.enable", True))
    yield broken("writes needing every replica", set_config("min.insync.replicas", 3))
    yield broken(
        "consumer offsets on one node",
        set_config("offsets.topic.replication.factor", 1),
    )
    yield broken(
        "no Topic Operator",
        lambda _, kafka, __: kafka["spec"]["entityOperator"].pop("topicOperator"),
    )
    yield broken(
        "a User Operator",
        lambda _, kafka, __: kafka["spec"]["entityOperator"].__setitem__("userOperator", {}),
    )
    yield broken(
        "another Kafka version",
        lambda _, kafka, __: kafka["spec"]["kafka"].__setitem__("version", "4.0.0"),
    )
    yield broken(
        "a ZooKeeper section",
        lambda _, kafka, __: kafka["spec"].__setitem__("zookeeper", {"replicas": 3}),
    )
    yield broken("no node pool", lambda docs, _, pool: docs.remove(pool))


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "check":
        problems: list[str] = []
        expected = Expected(problems)
        if expected.replicas is None or expected.cluster is None:
            problems.append(
                "terraform/modules/kafka/variables.tf: no default replicas or cluster_name"
            )
        else:
            default, single = load_yaml_all(Path(argv[2])), load_yaml_all(Path(argv[3]))
            problems += check_render(default, expected, expected.replicas, "default values")
            problems += check_render(single, expected, 1, "replicas=1")
            problems += check_topics(expected)
            problems += check_bootstrap(expected)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{len(problems)} problem(s) in the Kafka chart", file=sys.stderr)
            return 1
        print(
            f"Kafka {expected.kafka_version} cluster {expected.cluster} in namespace "
            f"{expected.namespace}, {expected.replicas} node(s) by default (1 with replicas=1), "
            f"bootstrap {expected.bootstrap}; defaults agree; "
            f"{len([d for d in load_yaml_all(TOPICS) if d.get('kind') == 'KafkaTopic'])} "
            "topics fit: valid"
        )
        return 0
    if len(argv) == 3 and argv[1] == "self-test":
        problems: list[str] = []
        expected = Expected(problems)
        docs = load_yaml_all(Path(argv[2]))
        baseline = check_render(docs, expected, expected.replicas, "default values")
        if problems or baseline:
            print(
                "self-test: the default render itself has problems; run check first",
                file=sys.stderr,
            )
            return 1
        missed = []
        count = 0
        for description, broken in breaks(docs):
            count += 1
            if not check_render(broken, expected, expected.replicas, description):
                missed.append(description)
        for description in missed:
            print(f"self-test: not caught: {description}", file=sys.stderr)
        if missed:
            return 1
        print(f"{count} breaks, every one caught")
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
