#!/usr/bin/env python3
"""Writes kubernetes/base/monitoring/ from observability/, its single source.

    python3 ci/generate-k8s-monitoring.py [OUT_DIR]    (default kubernetes/base/monitoring)

- podmonitor.yaml: observability/prometheus/kubernetes/podmonitor.yaml as it is;
- prometheusrule-<name>.yaml: one PrometheusRule per observability/prometheus/rules/<name>.yml,
  whose spec.groups is the file's groups, text and comments kept;
- dashboards/<name>.json: the Grafana dashboards as they are, turned into ConfigMaps labelled
  grafana_dashboard: "1" by the generated kustomization.yaml.

Kustomize reads no file outside its directory, so the copies are kept in the tree;
ci/check-kubernetes.sh regenerates them into a temporary folder and fails when they differ.
Needs PyYAML (to check that each PrometheusRule holds exactly its file's groups).
"""

import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "observability"
PODMONITOR = SOURCE / "prometheus" / "kubernetes" / "podmonitor.yaml"
RULES = SOURCE / "prometheus" / "rules"
DASHBOARDS = SOURCE / "grafana" / "dashboards"

HEADER = "# Generated from {source} by ci/generate-k8s-monitoring.py:\n# edit the source, then run the script.\n"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def prometheus_rule(rules_file: Path) -> str:
    """A PrometheusRule whose spec.groups is the rule file's `groups`, text kept."""
    text = rules_file.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == "groups:"]
    if len(starts) != 1:
        fail(f"{relative(rules_file)}: expected one top-level `groups:` line")
    start = starts[0]
    # Everything after `groups:` belongs to it (the file has no other top-level key).
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith((" ", "#")):
            fail(f"{relative(rules_file)}: a top-level key after `groups:`: {line.strip()}")
    comments = "".join(lines[:start])
    body = "".join(("  " + line) if line.strip() else line for line in lines[start:])
    name = f"figachechnaya-{rules_file.stem}"
    out = (
        HEADER.format(source=relative(rules_file))
        + comments
        + "apiVersion: monitoring.coreos.com/v1\n"
        + "kind: PrometheusRule\n"
        + "metadata:\n"
        + f"  name: {name}\n"
        + "  labels:\n"
        + "    app.kubernetes.io/component: monitoring\n"
        + "spec:\n"
        + body
    )
    if not out.endswith("\n"):
        out += "\n"
    # The indented text must mean exactly the file's groups.
    if yaml.safe_load(out)["spec"]["groups"] != yaml.safe_load(text)["groups"]:
        fail(f"{relative(rules_file)}: its groups do not survive indentation")
    return out


def kustomization(rule_files: list[str], dashboards: list[Path]) -> str:
    out = [
        HEADER.format(source="observability/"),
        '# The Grafana dashboards become ConfigMaps labelled grafana_dashboard: "1", which\n',
        "# Grafana's dashboard sidecar (kube-prometheus-stack) loads, into the folder named by\n",
        "# grafana_folder when the sidecar's folderAnnotation is set to it.\n",
        "apiVersion: kustomize.config.k8s.io/v1beta1\n",
        "kind: Kustomization\n",
        "resources:\n",
        "  - podmonitor.yaml\n",
    ]
    out += [f"  - {name}\n" for name in rule_files]
    out.append("configMapGenerator:\n")
    for dashboard in dashboards:
        out += [
            f"  - name: figachechnaya-dashboard-{dashboard.stem}\n",
            "    files:\n",
            f"      - dashboards/{dashboard.name}\n",
            "    options:\n",
            "      disableNameSuffixHash: true\n",
            "      labels:\n",
            "        app.kubernetes.io/component: monitoring\n",
            '        grafana_dashboard: "1"\n',
            "      annotations:\n",
            "        grafana_folder: Figachechnaya\n",
        ]
    return "".join(out)


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "kubernetes/base/monitoring"
    rules = sorted(RULES.glob("*.yml"))
    dashboards = sorted(DASHBOARDS.glob("*.json"))
    if not rules:
        fail(f"no rule files in {relative(RULES)}")
    if not dashboards:
        fail(f"no dashboards in {relative(DASHBOARDS)}")

    files: dict[str, str] = {
        "podmonitor.yaml": HEADER.format(source=relative(PODMONITOR))
        + PODMONITOR.read_text(encoding="utf-8"),
    }
    rule_files = []
    for rules_file in rules:
        name = f"prometheusrule-{rules_file.stem}.yaml"
        files[name] = prometheus_rule(rules_file)
        rule_files.append(name)
    files["kustomization.yaml"] = kustomization(rule_files, dashboards)

    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "dashboards").mkdir(parents=True)
    for name, text in files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    for dashboard in dashboards:
        shutil.copyfile(dashboard, out_dir / "dashboards" / dashboard.name)
    print(
        f"{out_dir}: 1 PodMonitor, {len(rule_files)} PrometheusRules, "
        f"{len(dashboards)} dashboards"
    )


if __name__ == "__main__":
    main()
