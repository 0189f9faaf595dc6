#!/usr/bin/env bash
# Every Rust test of the workspace, measured: builds the tests with LLVM's source-based
# coverage (cargo-llvm-cov), runs them as `cargo test` would, including the service binaries
# that the tests start as processes, and fails when fewer than COVERAGE_MIN_LINES percent
# (default 80) of the workspace's lines ran.
#
# Reports, kept in target/coverage/: the summary (summary.txt), lcov.info for tools and
# services that read it, and a browsable HTML report (html/index.html).
#
# The tests need the backing services: ./ci/services/up.sh starts them (./ci/test.sh calls
# both).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

min_lines="${COVERAGE_MIN_LINES:-80}"

# The servers of ./ci/services/up.sh, unless told otherwise. The tests create a database of
# their own per test through this server; each Kafka and S3 test uses topics, a consumer group
# and an object prefix of its own.
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}"
export TEST_KAFKA_BOOTSTRAP="${TEST_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
export TEST_TANSU_BIN="${TEST_TANSU_BIN:-$CACHE_DIR/tansu-0.6.0/tansu}"
export TEST_S3_ENDPOINT="${TEST_S3_ENDPOINT:-http://127.0.0.1:3900}"
out=target/coverage

if ! rustup component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
  rustup component add llvm-tools-preview || die "cannot install the llvm-tools component"
fi
cargo_tool llvm-cov 0.9.1

step "Tests, measured for coverage (cargo llvm-cov; lines >= $min_lines %)"
# show-env: the plain cargo commands below build instrumented into target/llvm-cov-target
# and write their profiles there, binaries started by the tests included.
eval "$(cargo llvm-cov show-env --export-prefix)"
cargo llvm-cov clean --workspace
cargo test --workspace --all-targets --locked
cargo test --workspace --doc --locked

mkdir -p "$out"
cargo llvm-cov report --summary-only | tee "$out/summary.txt"
cargo llvm-cov report --lcov --output-path "$out/lcov.info"
cargo llvm-cov report --html --output-dir "$out"
echo "Reports: $out/summary.txt, $out/lcov.info, $out/html/index.html"
cargo llvm-cov report --summary-only --fail-under-lines "$min_lines" >/dev/null ||
  die "line coverage is under $min_lines % (see $out/summary.txt)"
echo "ok: line coverage is at least $min_lines %"
