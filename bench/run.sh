#!/usr/bin/env bash
# The performance harness, in one command: builds the release binaries and the ceiling (a
# minimal axum service, crates/figalize/examples/ceiling.rs), makes PostgreSQL, the broker and
# the S3 server available, then bench/harness.py drives every scenario with wrk and
# regenerates docs/performance.md with the machine, date and commit.
#
#   bench/run.sh                          # 3 runs of 10 s per scenario
#   RUNS=5 DURATION=20 bench/run.sh
#   BASELINE=<commit> bench/run.sh        # also that commit's figalize and one-process site,
#                                         # alternating with this one's, compared in the report
#
# It measures and reports; it asserts no time. Stop other load on the machine first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

step "Load generator (wrk), psql, strip, perf"
command -v wrk >/dev/null || apt_install wrk
command -v psql >/dev/null || apt_install postgresql-client
command -v strip >/dev/null || apt_install binutils
# perf profiles figalize during the load; without it the report says there is no profile.
command -v perf >/dev/null || apt_install linux-perf || echo "perf is not available: no profile"

step "Release binaries and the ceiling"
cargo build --release --locked -p history -p figalize -p imagizer -p figachechnaya --bins
cargo build --release --locked -p figalize --example ceiling

if [ -n "${BASELINE:-}" ]; then
  # The earlier commit's sources, exported apart and built with a target folder of their own:
  # sharing one would let cargo take the other tree's artefacts for fresh.
  BASELINE_COMMIT=$(git rev-parse --short=12 --verify "$BASELINE^{commit}")
  step "The baseline: figalize and the one-process site at $BASELINE_COMMIT"
  baseline_dir="$PWD/target/baseline"
  # Exported again only for another commit: fresh files would make cargo build it all again.
  if [ "$(cat "$baseline_dir/commit" 2>/dev/null)" != "$BASELINE_COMMIT" ]; then
    rm -rf "$baseline_dir/src" && mkdir -p "$baseline_dir/src"
    git archive "$BASELINE_COMMIT" | tar -x -C "$baseline_dir/src"
    echo "$BASELINE_COMMIT" >"$baseline_dir/commit"
  fi
  (cd "$baseline_dir/src" &&
    CARGO_TARGET_DIR="$baseline_dir/target" cargo build --release --locked -p figalize -p figachechnaya -p history --bins)
  export BASELINE_COMMIT BASELINE_RELEASE="$baseline_dir/target/release" BASELINE_SOURCE="$baseline_dir/src"
fi

./ci/services/up.sh

step "The harness"
export S3_LOCAL_BUCKET S3_LOCAL_KEY_ID S3_LOCAL_KEY_SECRET
python3 bench/harness.py
