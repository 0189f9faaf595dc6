#!/usr/bin/env bash
# The image pipeline's benchmarks: renders per second on one core, and the time from
# figalize's 200 to the PNG stored in S3 at a steady 50 jobs/s through the real broker and
# S3 server (started here if they are not running). JOBS and RATE tune the second.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

step "Backing services"
./ci/services/kafka.sh
./ci/services/s3.sh

step "Rendering (cargo bench -p imagizer --bench render)"
cargo bench --locked -p imagizer --bench render -- --noplot 2>&1 | grep -E "time:|render summary|^render|^draw"

step "figalize → Kafka → imagizer → S3 at ${RATE:-50} jobs/s"
cargo bench --locked -p imagizer --bench pipeline_latency
