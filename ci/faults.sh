#!/usr/bin/env bash
# Fault injection under load (ci/faults.py): the three services as separate processes on a
# PostgreSQL cluster, a Kafka-protocol broker and an S3 server of this suite's own, a steady
# load on figalize, and eight faults in turn — kill -9 history, PostgreSQL down 10 s, the broker
# down 10 s, S3 down 10 s, kill -9 imagizer mid-batch, a rolling SIGTERM of every service,
# kill -9 figalize restarted on its journal, kill -9 the one-process site (loaded in its turn)
# restarted on its DATA_DIR.
# Prints a table of the checks per scenario; fails when one does not hold.
#
# Everything it starts is fresh for each run and stopped at the end:
#   PostgreSQL   a cluster made with initdb in a temporary folder, on 127.0.0.1:18432
#   broker       Tansu on 127.0.0.1:18492 with its object-store engine: topics, records,
#                offsets and groups live in an S3 bucket outside the broker's process, so a
#                restart of the broker loses nothing. The bucket is served by moto's S3 server
#                (PyPI, pinned) on 18920: the engine updates its objects with conditional
#                writes (If-Match, If-None-Match), which moto honours and Garage 2.5.0 ignores
#                (with Garage the broker loses updates and consumers stall after a restart).
#   images       a Garage on 18900–18903 (web endpoint 18902), as in production
#   services     history 18401, figalize 18402 and 18412 (a rolling restart; each with a
#                JOURNAL_DIR of its own), imagizer 18403, the one-process site 18404 (its
#                DATA_DIR in the state folder), release builds (the debug imagizer renders
#                too slowly to keep up)
#
# Settings (environment): FAULTS_RATE (100 figalizations/s), FAULTS_THREADS (8),
# FAULTS_PROFILE (release or debug: which build of the services to run), FAULTS_SCENARIOS
# (e.g. 2,5: only those).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

PROFILE=${FAULTS_PROFILE:-release}
STATE="$SERVICES_DIR/faults"
PG_PORT=18432
BROKER_PORT=18492
BROKER_STORAGE_PORT=18920
IMAGES_PORT=18900
BROKER_BUCKET=figachechnaya-broker

step "Fault injection: the binaries ($PROFILE) and the backing services' programs"
flag=()
[ "$PROFILE" = release ] && flag=(--release)
cargo build "${flag[@]}" --locked --bins -p history -p figalize -p imagizer -p figachechnaya
tansu=$(TANSU_INSTALL_ONLY=1 ./ci/services/kafka.sh | tail -n 1)
pg_bin=$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ]; then
  apt_install postgresql
  pg_bin=$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1)
fi
pg_bin=$(dirname "$pg_bin")
command -v psql >/dev/null || apt_install postgresql-client
command -v curl >/dev/null || apt_install curl
moto=$(pip_tools moto 'moto[server]==5.1.18')

# PostgreSQL refuses to run as root: as root, its commands run as the postgres user.
as_postgres=()
[ "$(id -u)" -eq 0 ] && as_postgres=(runuser -u postgres --)

# Stops a Garage this script started in an earlier run that was cut short.
stop_garage() {
  local pid_file=$1/garage.pid
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    kill -TERM "$(cat "$pid_file")"
    for _ in $(seq 1 50); do kill -0 "$(cat "$pid_file")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pid_file"
}

pg_data=""
moto_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill -TERM "$moto_pid" 2>/dev/null || true
  stop_garage "$STATE/images-garage"
  if [ -n "$pg_data" ]; then
    "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$pg_data"
  fi
}
trap cleanup EXIT

step "Fault injection: fresh backing services"
stop_garage "$STATE/images-garage"
rm -rf "$STATE"
mkdir -p "$STATE"
for port in $PG_PORT $BROKER_PORT $BROKER_STORAGE_PORT $IMAGES_PORT 18401 18402 18412 18403 18404; do
  port_open "$port" && die "port $port is taken: is an earlier run still going?"
done
"$moto/moto_server" -H 127.0.0.1 -p $BROKER_STORAGE_PORT >"$STATE/moto.log" 2>&1 &
moto_pid=$!
wait_for_port $BROKER_STORAGE_PORT 30 || { cat "$STATE/moto.log" >&2; die "moto's S3 server did not start"; }
curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$BROKER_STORAGE_PORT/$BROKER_BUCKET"
echo "The broker's bucket: http://127.0.0.1:$BROKER_STORAGE_PORT/$BROKER_BUCKET (moto)"
GARAGE_STATE="$STATE/images-garage" GARAGE_PORT=$IMAGES_PORT ./ci/services/s3.sh
# The suite stops and starts the image store itself: it runs it as its own child.
stop_garage "$STATE/images-garage"
garage=$(garage_bin "$GARAGE_VERSION")

pg_data=$(mktemp -d /tmp/figachechnaya-faults-pg.XXXXXX)
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pg_data"
"${as_postgres[@]}" "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres --no-sync >/dev/null

step "Fault injection: eight faults under load"
FAULTS_BIN="$PWD/target/$PROFILE" FAULTS_STATE="$STATE" \
  FAULTS_PG_CTL="${as_postgres[*]} $pg_bin/pg_ctl" FAULTS_PG_DATA="$pg_data" FAULTS_PG_PORT=$PG_PORT \
  FAULTS_PG_SOCKETS="$pg_data" \
  FAULTS_TANSU="$tansu" FAULTS_BROKER_PORT=$BROKER_PORT FAULTS_BROKER_STORAGE_PORT=$BROKER_STORAGE_PORT \
  FAULTS_BROKER_BUCKET=$BROKER_BUCKET \
  FAULTS_GARAGE="$garage" FAULTS_IMAGES_CONFIG="$STATE/images-garage/garage.toml" FAULTS_IMAGES_PORT=$IMAGES_PORT \
  FAULTS_IMAGES_BUCKET="$S3_LOCAL_BUCKET" FAULTS_S3_KEY_ID="$S3_LOCAL_KEY_ID" FAULTS_S3_KEY_SECRET="$S3_LOCAL_KEY_SECRET" \
  python3 ci/faults.py
