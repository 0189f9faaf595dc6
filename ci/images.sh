#!/usr/bin/env bash
# Builds the four container images and tags each with the version and the commit:
#
#   $REGISTRY/<image>:<version>   e.g. ghcr.io/figachechnaya/figalize:0.1.0
#   $REGISTRY/<image>:<commit>    the first 12 hex digits, what a deployment pins
#
# Usage: ci/images.sh [--push] [IMAGE...]   (IMAGE: figalize history imagizer frontend; all
# by default). --push pushes both tags. Needs Docker with BuildKit. REGISTRY defaults to
# "figachechnaya", the names the compose stack and the Kubernetes base use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

push=false
if [ "${1:-}" = "--push" ]; then
  push=true
  shift
fi
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(figalize history imagizer frontend)

registry="${REGISTRY:-figachechnaya}"
version=$(./ci/version.sh)
commit=$(git rev-parse --short=12 HEAD)
command -v docker >/dev/null || die "docker is not installed"

for image in "${images[@]}"; do
  case "$image" in
    figalize | history | imagizer) dockerfile=(-f docker/services.Dockerfile --target "$image") ;;
    frontend) dockerfile=(-f frontend/Dockerfile) ;;
    *) die "unknown image $image (figalize, history, imagizer, frontend)" ;;
  esac
  step "$registry/$image:$version and :$commit"
  docker build "${dockerfile[@]}" \
    --build-arg FIGACHECHNAYA_VERSION="$version" \
    --build-arg FIGACHECHNAYA_COMMIT="$commit" \
    -t "$registry/$image:$version" -t "$registry/$image:$commit" .
  if $push; then
    docker push "$registry/$image:$version"
    docker push "$registry/$image:$commit"
  fi
done
