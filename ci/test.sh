#!/usr/bin/env bash
# Every test of the project, from a fresh clone on a Debian machine with Rust.
#
# Installs and starts what the tests need (idempotently: what is already there is reused),
# then checks formatting, lints, and runs all unit, integration and property tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step "Toolchain"
command -v cargo >/dev/null || die "Rust is not installed: see https://rustup.rs"
need_component fmt rustfmt
need_component clippy clippy
cargo --version

step "Backing services: PostgreSQL, a Kafka-protocol broker (Tansu), S3 (Garage)"
./ci/services/postgres.sh
./ci/services/kafka.sh
./ci/services/s3.sh
# The tests create a database of their own per test through this server.
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
# Each Kafka and S3 test uses topics, a consumer group and an object prefix of its own.
export TEST_KAFKA_BOOTSTRAP="${TEST_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
export TEST_TANSU_BIN="${TEST_TANSU_BIN:-$CACHE_DIR/tansu-0.6.0/tansu}"
export TEST_S3_ENDPOINT="${TEST_S3_ENDPOINT:-http://127.0.0.1:3900}"

step "Format (cargo fmt --check)"
cargo fmt --all -- --check

step "Lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Prometheus configuration, alert rules and their unit tests, Grafana dashboards (promtool).
./ci/observability.sh

step "Tests (cargo test)"
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

# The site in headless Chromium, on the one-process site and on the local stack over HTTPS;
# then the stack's metrics, scraped by a real Prometheus, and one request followed through the logs.
./ci/stack-tests.sh

step "All checks passed"
