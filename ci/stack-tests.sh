#!/usr/bin/env bash
# Tests of the whole site as it runs: the one-process site, and the local stack (separate
# services on PostgreSQL, Tansu and Garage, behind nginx on HTTPS).
#
# 1. The site in a real browser: headless Chromium (Debian's package) driven by Playwright
#    (playwright-core from npm), against both. Screenshots of each state are kept in
#    target/browser-tests/<site>/.
# 2. Observability, live: promtool on each service's /metrics, a real Prometheus scraping the
#    stack with the alert rules loaded, and one request id followed through every log
#    (ci/observability_live.py).
#
# Uses ports 18001–18003, 18080, 18088, 18090, 18443 and 19090, a database and a topic of its
# own, so a local stack started by hand keeps running beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

PROFILE=${BROWSER_TESTS_PROFILE:-debug}
OUT="$PWD/target/browser-tests"
SITE_PORT=18080
HTTPS_PORT=18443
export LOCAL_STACK_STATE="$SERVICES_DIR/browser-tests-stack"
export LOCAL_STACK_PROFILE=$PROFILE LOCAL_STACK_BUILD=0
export LOCAL_STACK_HTTPS_PORT=$HTTPS_PORT LOCAL_STACK_HTTP_PORT=18088 LOCAL_STACK_SITE_PORT=18090
export LOCAL_STACK_HISTORY_PORT=18001 LOCAL_STACK_FIGALIZE_PORT=18002 LOCAL_STACK_IMAGIZER_PORT=18003
export LOCAL_STACK_DATABASE=figachechnaya_browser_tests LOCAL_STACK_TOPIC=figalized-browser-tests
export LOCAL_STACK_GROUP=imagizer-browser-tests

step "Chromium, Playwright, Prometheus and the binaries ($PROFILE)"
command -v chromium >/dev/null || apt_install chromium
command -v prometheus >/dev/null || apt_install prometheus
command -v npm >/dev/null || apt_install nodejs npm
(cd frontend/tests && npm ci --no-audit --no-fund --loglevel=error)
flag=()
[ "$PROFILE" = release ] && flag=(--release)
cargo build "${flag[@]}" --locked --bins -p figachechnaya -p history -p figalize -p imagizer

rm -rf "$OUT"
mkdir -p "$OUT"
data=$(mktemp -d)
cleanup() {
  stop_site
  ./ci/local-stack.sh stop || true
  rm -rf "$data"
}
trap cleanup EXIT

step "The one-process site on http://127.0.0.1:$SITE_PORT"
start_site "target/$PROFILE/figachechnaya" "$SITE_PORT" "$data" "$OUT/one-process.log"

./ci/local-stack.sh start

step "Browser tests (Playwright)"
export SITE_TARGETS="[{\"name\":\"one-process\",\"url\":\"http://127.0.0.1:$SITE_PORT/\"},{\"name\":\"local-stack\",\"url\":\"https://127.0.0.1:$HTTPS_PORT/\"}]"
export SCREENSHOT_DIR="$OUT"
(cd frontend/tests && npm test --silent)
echo "Screenshots: $OUT/{one-process,local-stack}/*.png"

step "Observability of the running stack"
OBSERVABILITY_INGRESS="https://127.0.0.1:$HTTPS_PORT" OBSERVABILITY_LOGS="$LOCAL_STACK_STATE" \
  OBSERVABILITY_FIGALIZE_PORT=$LOCAL_STACK_FIGALIZE_PORT OBSERVABILITY_HISTORY_PORT=$LOCAL_STACK_HISTORY_PORT \
  OBSERVABILITY_IMAGIZER_PORT=$LOCAL_STACK_IMAGIZER_PORT OBSERVABILITY_PROMETHEUS_PORT=19090 \
  python3 ci/observability_live.py
