#!/usr/bin/env bash
# Deploys one environment's overlay with the images of one commit, waits for the rollout, and
# rolls back when it does not complete.
#
# Usage: ci/deploy.sh [--dry-run] dev|prod TAG
#   TAG: an image tag that ci/images.sh pushed (a commit, or a version).
#   --dry-run: print what would be applied, touch no cluster.
# Rollback by hand: ci/deploy.sh prod <an earlier tag>, or, for the last rollout only,
# kubectl -n <namespace> rollout undo deployment/<name>.
#
# kubectl must point at the environment's cluster (KUBECONFIG); REGISTRY as for ci/images.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

dry_run=false
if [ "${1:-}" = "--dry-run" ]; then
  dry_run=true
  shift
fi
[ $# -eq 2 ] || die "usage: ci/deploy.sh [--dry-run] dev|prod TAG"
environment=$1 tag=$2
case "$environment" in
  dev) namespace=figachechnaya-dev ;;
  prod) namespace=figachechnaya ;;
  *) die "unknown environment $environment (dev, prod)" ;;
esac
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not an image tag: $tag"
registry="${REGISTRY:-figachechnaya}"
deployments=(history figalize imagizer frontend)

# The overlay as committed, with this tag for every image: a kustomization of its own over it.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r kubernetes "$work/"
mkdir "$work/deploy"
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources: [../kubernetes/overlays/$environment]"
  echo "images:"
  for image in "${deployments[@]}"; do
    echo "  - {name: figachechnaya/$image, newName: $registry/$image, newTag: \"$tag\"}"
  done
} >"$work/deploy/kustomization.yaml"

if $dry_run; then
  kubectl kustomize "$work/deploy"
  exit 0
fi

step "Deploying $tag to $environment (namespace $namespace)"
kubectl apply -k "$work/deploy"

step "Waiting for the rollout"
failed=()
for deployment in "${deployments[@]}"; do
  kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout=5m ||
    failed+=("$deployment")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "rollout of ${failed[*]} did not complete: rolling back" >&2
  for deployment in "${deployments[@]}"; do
    kubectl -n "$namespace" rollout undo "deployment/$deployment" || true
  done
  for deployment in "${deployments[@]}"; do
    kubectl -n "$namespace" rollout status "deployment/$deployment" --timeout=5m || true
  done
  die "deployment of $tag to $environment failed and was rolled back"
fi
echo "ok: $environment runs $tag"
