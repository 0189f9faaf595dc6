#!/usr/bin/env bash
# Every test of the project, from a fresh clone on a Debian machine with Rust.
#
# Installs and starts what the tests need (idempotently: what is already there is reused),
# then runs, in the order of the pipeline's jobs (.github/workflows/ci.yml), each a script of
# its own that also runs alone:
#
#   ci/lint.sh               format, clippy, the workflows (actionlint), the shell scripts
#   ci/supply-chain.sh       cargo deny: licences, bans, sources, advisories (when reachable)
#   ci/observability.sh      Prometheus configuration, rules and their tests, dashboards
#   ci/check-containers.sh   Dockerfiles and the docker-compose stack, offline
#   ci/check-kubernetes.sh   the Kubernetes manifests of both overlays, offline
#   ci/check-terraform.sh    the Terraform configuration, offline
#   ci/services/up.sh        PostgreSQL, a Kafka-protocol broker, S3
#   ci/coverage.sh           every Rust test, measured: fails under 80 % of lines
#   ci/stack-tests.sh        the site in headless Chromium, one-process and on the local stack
#                            over HTTPS; the metrics scraped by Prometheus; a request in the logs
#   ci/contract.sh           schemathesis against each service's OpenAPI document: no 5xx, and
#                            every answer as documented
#   ci/faults.sh             eight faults under load (processes killed, figalize and the
#                            one-process site among them, PostgreSQL, the broker and S3 stopped,
#                            a rolling restart): nothing accepted is lost
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step "Toolchain"
command -v cargo >/dev/null || die "Rust is not installed: see https://rustup.rs"
cargo --version

./ci/lint.sh
./ci/supply-chain.sh
./ci/observability.sh
./ci/check-containers.sh
./ci/check-kubernetes.sh
./ci/check-terraform.sh
./ci/services/up.sh
./ci/coverage.sh
./ci/stack-tests.sh
./ci/contract.sh
./ci/faults.sh

step "All checks passed"
