#!/usr/bin/env bash
# Committed appends per second through POST /api/append/ into PostgreSQL, under concurrent
# clients (wrk), for the batching writer and for a single-row-insert baseline (one insert and
# one commit per request, as many writers as pool connections), alternated in the same run.
# Prints each run, the medians and the ratio. Not a test: nothing here asserts a time.
#
#   bench/history-appends.sh            # 3 runs of 10 s per mode, 64 connections
#   RUNS=5 DURATION=20 CONNECTIONS=128 bench/history-appends.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-18001}
SERVER_URL=${TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
BASE_URL=${SERVER_URL%/*}

command -v wrk >/dev/null || apt_install wrk
command -v psql >/dev/null || apt_install postgresql-client
./ci/services/postgres.sh >/dev/null
cargo build --release --locked -q -p history
binary=target/release/history

work=$(mktemp -d)
trap 'if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
cat >"$work/append.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"original": "велосипед", "figalized": "Фигосипед"}'
LUA

# run MODE -> prints "committed_per_second p50_ms p99_ms"
run() {
  local mode=$1 db="bench_$$_$RANDOM"
  psql -q "$SERVER_URL" -c "create database $db"
  # wrk is one client: its CONNECTIONS are not to be bound per client.
  local -a env=(DATABASE_URL="$BASE_URL/$db" HISTORY_API_PORT="$PORT" RUST_LOG=warn DB_POOL_SIZE=10
    MAX_CONNECTIONS_PER_CLIENT=100000 RATE_LIMIT_PER_SECOND=0)
  if [ "$mode" = baseline ]; then env+=(HISTORY_BATCH_MAX=1 HISTORY_WRITERS=10); fi
  if curl -fs "http://127.0.0.1:$PORT/api/livez/" >/dev/null 2>&1; then
    die "something already listens on port $PORT: stop it or set PORT"
  fi
  env "${env[@]}" "$binary" >"$work/$mode.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    curl -fs "http://127.0.0.1:$PORT/api/healthz/" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "history did not start: $(cat "$work/$mode.log")"
    sleep 0.05
  done
  wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$work/append.lua" \
    "http://127.0.0.1:$PORT/api/append/" >"$work/wrk.txt"
  kill -TERM "$pid"; wait "$pid" || true
  pid=
  local rows non2xx p50 p99
  rows=$(psql -qtA "$BASE_URL/$db" -c "select total from history_total")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  psql -q "$SERVER_URL" -c "drop database $db with (force)"
  echo "$((rows / DURATION)) ${p50} ${p99} ${non2xx:-0}"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "history appends: $CONNECTIONS connections, $DURATION s per run, $RUNS runs per mode, $(nproc) cores"
printf '%-9s %4s %14s %9s %9s %8s\n' mode run committed/s p50 p99 non-2xx
: >"$work/batched"; : >"$work/baseline"
for i in $(seq 1 "$RUNS"); do
  for mode in batched baseline; do
    read -r rate p50 p99 errors < <(run "$mode")
    echo "$rate" >>"$work/$mode"
    printf '%-9s %4s %14s %9s %9s %8s\n' "$mode" "$i" "$rate" "$p50" "$p99" "$errors"
  done
done
batched=$(median <"$work/batched")
baseline=$(median <"$work/baseline")
echo
echo "median committed appends/s: batched $batched, single-row baseline $baseline," \
  "ratio $(awk -v a="$batched" -v b="$baseline" 'BEGIN {printf "%.1f", a / b}')x"
