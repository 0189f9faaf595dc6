#!/usr/bin/env bash
# Contract and fuzz tests of the HTTP APIs: schemathesis (from PyPI) generates requests from each
# service's own OpenAPI document, valid ones and deliberately invalid ones, sends them to the
# running service and checks every answer against the same document:
#
#   not_a_server_error             no 5xx, whatever the request
#   status_code_conformance        the status is one the operation documents
#   content_type_conformance       so is the Content-Type
#   response_headers_conformance   every header the document requires is there and matches
#   response_schema_conformance    the body matches the documented schema
#
# Targets: history, figalize and imagizer as separate processes on PostgreSQL, Tansu and Garage
# (through ./ci/local-stack.sh, without its ingress), then the one-process site, which serves
# the same three documents over its embedded stores.
#
# Deterministic and bounded: a fixed seed and a fixed number of cases per operation (no time
# budget, which would make the number of cases depend on the machine's speed), one worker, no
# example database carried over between runs, nothing learnt from the answers
# (ci/schemathesis.toml), and a time limit on each run as a safety net. After each run,
# ci/contract_cases.py prints the cases each operation got and fails if one that takes input
# got fewer than asked. Any failure fails the script, after every target has run; the
# documents and reports (JUnit, NDJSON events) are kept in target/contract/<run>/.
#
# Settings (environment):
#   CONTRACT_PROFILE       debug (default) or release: which build of the binaries to test
#   CONTRACT_BUILD         1 (default) builds them first; 0 tests what is built
#   CONTRACT_MAX_EXAMPLES  generated cases per operation in the fuzzing phase: 1000
#   CONTRACT_SEED          the seed of the generation: 20261125
#   CONTRACT_TIME_LIMIT    seconds one run (one document) may take before it fails: 900
#
# Uses ports 18201–18203 and 18280, a database, a topic and a consumer group of its own, so a
# local stack started by hand and ./ci/stack-tests.sh keep running beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

PROFILE=${CONTRACT_PROFILE:-debug}
BUILD=${CONTRACT_BUILD:-1}
MAX_EXAMPLES=${CONTRACT_MAX_EXAMPLES:-1000}
SEED=${CONTRACT_SEED:-20261125}
TIME_LIMIT=${CONTRACT_TIME_LIMIT:-900}
SITE_PORT=18280
OUT="$PWD/target/contract"
DATABASE=figachechnaya_contract
ADMIN_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
export LOCAL_STACK_STATE="$SERVICES_DIR/contract-stack"
export LOCAL_STACK_PROFILE=$PROFILE LOCAL_STACK_BUILD=0 LOCAL_STACK_INGRESS=0
export LOCAL_STACK_HISTORY_PORT=18201 LOCAL_STACK_FIGALIZE_PORT=18202 LOCAL_STACK_IMAGIZER_PORT=18203
export LOCAL_STACK_DATABASE=$DATABASE LOCAL_STACK_TOPIC=figalized-contract
export LOCAL_STACK_GROUP=imagizer-contract
# schemathesis is one client sending as fast as it can, on purpose.
export LOCAL_STACK_RATE_LIMIT=0

# Hypothesis is pinned beside schemathesis: the cases a seed produces depend on its version too.
step "schemathesis and the binaries ($PROFILE)"
tools=$(pip_tools contract 'schemathesis==4.32.5' 'hypothesis==6.170.17')
"$tools/st" --version
if [ "$BUILD" = 1 ]; then
  flag=()
  [ "$PROFILE" = release ] && flag=(--release)
  cargo build "${flag[@]}" --locked --bins -p figachechnaya -p history -p figalize -p imagizer
fi
for binary in figachechnaya history figalize imagizer; do
  [ -x "target/$PROFILE/$binary" ] || die "target/$PROFILE/$binary is not built (CONTRACT_BUILD=1 builds it)"
done

# A database left by an interrupted run is dropped, and figalize's journal for it with it:
# every run starts from an empty history.
./ci/services/postgres.sh
command -v psql >/dev/null || apt_install postgresql-client
drop_database() {
  PGOPTIONS="-c client_min_messages=warning" psql "$ADMIN_URL" -qc "drop database if exists \"$DATABASE\" with (force)"
  rm -rf "$LOCAL_STACK_STATE/journal-$DATABASE"
}
drop_database

rm -rf "$OUT"
mkdir -p "$OUT"
data=$(mktemp -d)
cleanup() {
  stop_site
  ./ci/local-stack.sh stop || true
  drop_database || true
  rm -rf "$data"
}
trap cleanup EXIT

./ci/local-stack.sh start

step "The one-process site on http://127.0.0.1:$SITE_PORT"
RATE_LIMIT_PER_SECOND=0 start_site "target/$PROFILE/figachechnaya" "$SITE_PORT" "$data" "$OUT/one-process.log"

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance
CHECKS+=,response_headers_conformance,response_schema_conformance

# Runs schemathesis over the document of service $2 served on port $3; $1 names the run.
#  - Phases: the documents' examples, the coverage phase (boundary values and each kind of
#    invalid input, derived from the schemas), then fuzzing with MAX_EXAMPLES cases per
#    operation, valid and invalid ones. No stateful phase: no answer names a resource that
#    another operation takes, so the documents have no links to follow.
#  - /api/history/stream is left out: it is Server-Sent Events that never end, so no response
#    to check ever completes (the browser and unit tests cover it). /metrics is in no document.
#    The health endpoints stay in: their answers are documented, 503 included.
#  - One worker: with two, the Hypothesis runs of two operations at once sometimes break each
#    other (a race in Hypothesis's internal cache) and one stops after a few cases, which
#    schemathesis then counts as passed.
#  - The request timeout is above the services' own REQUEST_TIMEOUT_MS (10 s), so a slow
#    request shows up as their documented 503, not as a client-side error.
#  - ci/schemathesis.toml turns off what would make the cases depend on the answers.
contract() {
  local name=$1 service=$2 port=$3 status=0
  local document="http://127.0.0.1:$port/api/$service/openapi.json" reports="$OUT/$name" exclude=()
  [ "$service" = history ] && exclude=(--exclude-path /api/history/stream)
  step "Contract: $name ($document)"
  mkdir -p "$reports"
  curl -fsS "$document" -o "$reports/openapi.json" || { echo "$name: no OpenAPI document" >&2; return 1; }
  timeout --kill-after=30 "$TIME_LIMIT" "$tools/st" --config-file ci/schemathesis.toml run "$document" \
    --checks "$CHECKS" \
    --phases examples,coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --generation-database none \
    "${exclude[@]}" \
    --workers 1 \
    --request-timeout 15 \
    --report junit,ndjson \
    --report-junit-path "$reports/junit.xml" --report-ndjson-path "$reports/events.ndjson" \
    --no-color || status=$?
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "$name: stopped after the time limit of $TIME_LIMIT s (CONTRACT_TIME_LIMIT)" >&2
  fi
  echo "Cases sent, per operation and phase:"
  python3 ci/contract_cases.py "$reports/openapi.json" "$reports/events.ndjson" "$MAX_EXAMPLES" || status=1
  return "$status"
}

runs=(
  "history history $LOCAL_STACK_HISTORY_PORT"
  "figalize figalize $LOCAL_STACK_FIGALIZE_PORT"
  "imagizer imagizer $LOCAL_STACK_IMAGIZER_PORT"
  "one-process-history history $SITE_PORT"
  "one-process-figalize figalize $SITE_PORT"
  "one-process-imagizer imagizer $SITE_PORT"
)
passed=() failed=()
for run in "${runs[@]}"; do
  read -r name service port <<<"$run"
  if contract "$name" "$service" "$port"; then
    passed+=("$name")
  else
    failed+=("$name")
  fi
done

step "Contract summary (seed $SEED, $MAX_EXAMPLES cases per operation; reports in $OUT)"
for name in "${passed[@]}"; do echo "  ok      $name"; done
for name in "${failed[@]}"; do echo "  FAILED  $name"; done
echo "contract: ${#passed[@]} passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ] || die "schemathesis found failures: ${failed[*]} (see above and $OUT)"
