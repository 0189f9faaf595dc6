#!/usr/bin/env bash
# Checks the observability files offline, with no running Prometheus or Grafana:
# the docker-compose Prometheus configuration and the rule files it loads, every rule file, the
# rules' unit tests (each alert must fire in one case and stay silent in another), the
# Kubernetes PodMonitor's shape, and the Grafana dashboards when their checker is there.
# Installs promtool (Debian's prometheus package) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

dir=observability/prometheus
shopt -s nullglob
rules=("$dir"/rules/*.yml)
tests=("$dir"/tests/*.test.yml)
[ ${#rules[@]} -gt 0 ] || die "no rule files in $dir/rules"
[ ${#tests[@]} -gt 0 ] || die "no rule tests in $dir/tests"

step "promtool"
if ! command -v promtool >/dev/null; then
  echo "Installing promtool from Debian's prometheus package"
  apt_install prometheus
fi
promtool --version | head -n 1

step "Prometheus configuration for docker-compose (and the rule files it loads)"
promtool check config "$dir/prometheus.compose.yml"

step "Rule files"
promtool check rules "${rules[@]}"

step "Rule unit tests"
promtool test rules "${tests[@]}"

step "Every alert has a test where it fires and one where it stays silent"
# The tests write `alertname:` before `exp_alerts:` in each case; `exp_alerts: []` is silence.
alerts=$(sed -n 's/^[[:space:]]*- alert:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p' "${rules[@]}" |
  sort -u)
cases=$(awk '
  /^[[:space:]]*- (eval_time|alertname):/ { name = "" }
  /^[[:space:]]*(- )?alertname:/ { name = $NF }
  /^[[:space:]]*(- )?exp_alerts:/ && name != "" {
    print name, ($0 ~ /\[\][[:space:]]*$/ ? "silent" : "fires")
  }
' "${tests[@]}" | sort -u)
missing=0
for alert in $alerts; do
  for outcome in fires silent; do
    if ! grep -qx "$alert $outcome" <<<"$cases"; then
      echo "missing: a case where $alert $outcome"
      missing=1
    fi
  done
done
[ "$missing" -eq 0 ] || die "some alerts are not tested both ways"
echo "$(wc -w <<<"$alerts") alerts, each tested firing and silent"

step "Kubernetes PodMonitor"
# PyYAML for the python3 on the PATH (which may not be Debian's): pip, else Debian's package.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet 'PyYAML==6.0.3' \
  || apt_install python3-yaml
python3 - "$dir/kubernetes/podmonitor.yaml" <<'PY'
import sys
import yaml

path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
problems = []
for doc in docs:
    where = f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    if doc.get("apiVersion") != "monitoring.coreos.com/v1" or doc.get("kind") != "PodMonitor":
        problems.append(f"{where}: not a monitoring.coreos.com/v1 PodMonitor")
        continue
    spec = doc.get("spec", {})
    match_labels = spec.get("selector", {}).get("matchLabels", {})
    if match_labels.get("app.kubernetes.io/part-of") != "figachechnaya":
        problems.append(f"{where}: does not select app.kubernetes.io/part-of: figachechnaya")
    endpoints = spec.get("podMetricsEndpoints") or []
    if not endpoints:
        problems.append(f"{where}: no podMetricsEndpoints")
    for endpoint in endpoints:
        if endpoint.get("port") != "http" or endpoint.get("path") != "/metrics":
            problems.append(f"{where}: an endpoint is not port http, path /metrics")
        if not any(
            r.get("targetLabel") == "job"
            and r.get("sourceLabels") == ["__meta_kubernetes_pod_label_app_kubernetes_io_name"]
            for r in endpoint.get("relabelings") or []
        ):
            problems.append(f"{where}: job is not set from app.kubernetes.io/name")
if not docs:
    problems.append(f"{path}: empty")
for problem in problems:
    print(problem, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{path}: {len(docs)} PodMonitor(s): valid")
PY

if [ -f ci/check-dashboards.py ]; then
  step "Grafana dashboards"
  python3 ci/check-dashboards.py
fi

step "Observability checks passed"
