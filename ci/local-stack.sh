#!/usr/bin/env bash
# The local stack: the production layout on one machine. The three services run as separate
# processes on real PostgreSQL, a Kafka-protocol broker (Tansu) and S3 (Garage), behind nginx
# on HTTPS with a self-signed certificate, configured from the same nginx templates as
# docker-compose (frontend/nginx/templates/).
#
#   ./ci/local-stack.sh [start]   build, (re)start everything, print the URL (https://127.0.0.1:8443)
#   ./ci/local-stack.sh stop      stop what it started (the backing services keep running)
#   ./ci/local-stack.sh status    what runs, and where its logs are
#
# Settings (environment):
#   LOCAL_STACK_PROFILE   release (default) or debug: which build of the binaries to run
#   LOCAL_STACK_BUILD     1 (default) builds the binaries first; 0 runs what is built
#   LOCAL_STACK_INGRESS   1 (default) starts nginx in front; 0 only the services, for tests
#                         that talk to each service directly
#   LOCAL_STACK_HTTPS_PORT, LOCAL_STACK_HTTP_PORT   the ingress: 8443 and 8088 (→ HTTPS)
#   LOCAL_STACK_SITE_PORT the static site behind the ingress: 8090
#   LOCAL_STACK_HISTORY_PORT, _FIGALIZE_PORT, _IMAGIZER_PORT   8001, 8002, 8003
#   LOCAL_STACK_DATABASE  the PostgreSQL database of the history: figachechnaya
#   LOCAL_STACK_TOPIC, LOCAL_STACK_GROUP   Kafka's topic of image jobs and imagizer's group:
#                         figalized, imagizer
#   LOCAL_STACK_CLIENT_RATE, LOCAL_STACK_CLIENT_BURST   the ingress's limit of every request
#                         per client address: 100r/s, bursts of 200 (above production's:
#                         browser tests load every page from one address)
#   LOCAL_STACK_FIGALIZE_RATE, LOCAL_STACK_FIGALIZE_BURST   and of POST /api/figalize/:
#                         20r/s, bursts of 40
#   LOCAL_STACK_RATE_LIMIT  the services' own RATE_LIMIT_PER_SECOND per client: their
#                         default when unset, 0 for a test that is one client on purpose
#   LOCAL_STACK_STATE     where pids, logs, the certificate, nginx's files and figalize's
#                         journal (one per database, replayed by the next start after a crash)
#                         are kept
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

PROFILE=${LOCAL_STACK_PROFILE:-release}
BUILD=${LOCAL_STACK_BUILD:-1}
INGRESS=${LOCAL_STACK_INGRESS:-1}
HTTPS_PORT=${LOCAL_STACK_HTTPS_PORT:-8443}
HTTP_PORT=${LOCAL_STACK_HTTP_PORT:-8088}
SITE_PORT=${LOCAL_STACK_SITE_PORT:-8090}
HISTORY_PORT=${LOCAL_STACK_HISTORY_PORT:-8001}
FIGALIZE_PORT=${LOCAL_STACK_FIGALIZE_PORT:-8002}
IMAGIZER_PORT=${LOCAL_STACK_IMAGIZER_PORT:-8003}
DATABASE=${LOCAL_STACK_DATABASE:-figachechnaya}
TOPIC=${LOCAL_STACK_TOPIC:-figalized}
GROUP=${LOCAL_STACK_GROUP:-imagizer}
STATE=${LOCAL_STACK_STATE:-$SERVICES_DIR/local-stack}
SERVICES=(history figalize imagizer)

# Stops the process whose id is in $1 (TERM, then KILL after 25 s), and removes the file.
stop_pid_file() {
  local file=$1 pid i
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 125; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop() {
  stop_pid_file "$STATE/nginx.pid"
  local service
  for service in "${SERVICES[@]}"; do
    stop_pid_file "$STATE/$service.pid"
  done
}

status() {
  local name pid
  for name in nginx "${SERVICES[@]}"; do
    pid=$(cat "$STATE/$name.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "$name: running (pid $pid, log $STATE/$name.log)"
    else
      echo "$name: stopped"
    fi
  done
}

# Waits up to 60 s for http://127.0.0.1:$2/api/healthz/ to answer 200 while process $1 lives.
wait_ready() {
  local name=$1 port=$2 pid i
  pid=$(cat "$STATE/$name.pid")
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$STATE/$name.log" >&2
      die "$name exited during start-up (log: $STATE/$name.log)"
    fi
    curl -fsS -o /dev/null "http://127.0.0.1:$port/api/healthz/" 2>/dev/null && return 0
    sleep 0.2
  done
  tail -n 30 "$STATE/$name.log" >&2
  die "$name was not ready within 60 s (log: $STATE/$name.log)"
}

# Starts service $1 with the environment in the remaining arguments.
start_service() {
  local name=$1
  shift
  echo "Starting $name"
  nohup env "$@" "target/$PROFILE/$name" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

# Renders an nginx template with exactly the variables it names (nginx's own $vars stay).
render() {
  local template=$1 out=$2 names
  names=$(grep -oE '\$\{[A-Z_]+\}' "$template" | sort -u | tr '\n' ' ')
  envsubst "$names" <"$template" >"$out"
}

start_nginx() {
  command -v nginx >/dev/null || apt_install nginx
  command -v envsubst >/dev/null || apt_install gettext-base
  mkdir -p "$STATE/nginx/conf.d" "$STATE/nginx/temp"
  ./ci/local-cert.sh "$STATE/tls" >/dev/null
  # The site is served from a copy, as the frontend image would: nginx's workers need not
  # read the clone's folder.
  rm -rf "$STATE/site" && cp -R frontend/site "$STATE/site"
  SITE_LISTEN="127.0.0.1:$SITE_PORT" SITE_ROOT="$STATE/site" \
    render frontend/nginx/templates/site.conf.template "$STATE/nginx/conf.d/site.conf"
  INGRESS_HTTP_PORT="127.0.0.1:$HTTP_PORT" INGRESS_HTTPS_PORT="127.0.0.1:$HTTPS_PORT" \
    PUBLIC_HTTPS_PORT="$HTTPS_PORT" \
    TLS_CERT="$STATE/tls/tls.crt" TLS_KEY="$STATE/tls/tls.key" \
    FRONTEND_ADDR="127.0.0.1:$SITE_PORT" FIGALIZE_ADDR="127.0.0.1:$FIGALIZE_PORT" \
    HISTORY_ADDR="127.0.0.1:$HISTORY_PORT" IMAGIZER_ADDR="127.0.0.1:$IMAGIZER_PORT" \
    IMAGES_ADDR="127.0.0.1:3902" IMAGES_HOST="$S3_LOCAL_BUCKET.web.localhost" IMAGES_PATH="/" \
    CLIENT_RATE="${LOCAL_STACK_CLIENT_RATE:-100r/s}" CLIENT_BURST="${LOCAL_STACK_CLIENT_BURST:-200}" \
    FIGALIZE_RATE="${LOCAL_STACK_FIGALIZE_RATE:-20r/s}" FIGALIZE_BURST="${LOCAL_STACK_FIGALIZE_BURST:-40}" \
    render frontend/nginx/templates/ingress.conf.template "$STATE/nginx/conf.d/ingress.conf"
  local user=""
  [ "$(id -u)" -eq 0 ] && user="user root root;"
  cat >"$STATE/nginx/nginx.conf" <<CONF
# Written by ci/local-stack.sh: the main configuration around the repository's templates.
$user
worker_processes 1;
daemon off;
pid $STATE/nginx/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65s;
    client_body_temp_path $STATE/nginx/temp/body;
    proxy_temp_path $STATE/nginx/temp/proxy;
    fastcgi_temp_path $STATE/nginx/temp/fastcgi;
    uwsgi_temp_path $STATE/nginx/temp/uwsgi;
    scgi_temp_path $STATE/nginx/temp/scgi;
    include $STATE/nginx/conf.d/*.conf;
}
CONF
  nginx -t -q -c "$STATE/nginx/nginx.conf" -p "$STATE/nginx" || die "nginx refused the configuration"
  echo "Starting nginx"
  nohup nginx -c "$STATE/nginx/nginx.conf" -p "$STATE/nginx" >"$STATE/nginx.log" 2>&1 &
  echo $! >"$STATE/nginx.pid"
  wait_for_port "$HTTPS_PORT" 10 || { tail -n 20 "$STATE/nginx.log" >&2; die "nginx did not start"; }
}

start() {
  if [ "$BUILD" = 1 ]; then
    step "Building the services ($PROFILE)"
    local flag=()
    [ "$PROFILE" = release ] && flag=(--release)
    cargo build "${flag[@]}" --locked -p history -p figalize -p imagizer --bins
  fi
  step "Backing services"
  ./ci/services/postgres.sh
  ./ci/services/kafka.sh
  ./ci/services/s3.sh
  command -v psql >/dev/null || apt_install postgresql-client
  local admin="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  if [ -z "$(psql "$admin" -Atc "select 1 from pg_database where datname = '$DATABASE'")" ]; then
    psql "$admin" -qc "create database \"$DATABASE\""
  fi

  step "The stack"
  stop
  mkdir -p "$STATE"
  # nginx is on this machine: the services take the client from its X-Forwarded-For.
  local common=(HOST=127.0.0.1 LOG_FORMAT=json RUST_LOG="${RUST_LOG:-info}" SHUTDOWN_GRACE_MS=10000
    TRUSTED_PROXIES=127.0.0.1 RATE_LIMIT_PER_SECOND="${LOCAL_STACK_RATE_LIMIT:-}")
  start_service history "${common[@]}" HISTORY_API_PORT="$HISTORY_PORT" \
    DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/$DATABASE"
  start_service imagizer "${common[@]}" IMAGIZER_API_PORT="$IMAGIZER_PORT" \
    KAFKA_BOOTSTRAP=127.0.0.1:9092 KAFKA_TOPIC_NAME="$TOPIC" KAFKA_GROUP_ID="$GROUP" KAFKA_SESSION_TIMEOUT_MS=6000 \
    S3_BUCKET="$S3_LOCAL_BUCKET" S3_ENDPOINT=http://127.0.0.1:3900 S3_REGION=garage \
    S3_ACCESS_KEY="$S3_LOCAL_KEY_ID" S3_SECRET_KEY="$S3_LOCAL_KEY_SECRET" \
    S3_PUBLIC_URL=/images/
  wait_ready history "$HISTORY_PORT"
  # A journal of its own, not ./data/journal, which the one-process site uses.
  start_service figalize "${common[@]}" FIGALIZE_API_PORT="$FIGALIZE_PORT" \
    HISTORY_APPEND_URL="http://127.0.0.1:$HISTORY_PORT/api/append/" \
    KAFKA_BOOTSTRAP=127.0.0.1:9092 KAFKA_TOPIC_NAME="$TOPIC" \
    JOURNAL_DIR="$STATE/journal-$DATABASE"
  wait_ready imagizer "$IMAGIZER_PORT"
  wait_ready figalize "$FIGALIZE_PORT"
  if [ "$INGRESS" != 1 ]; then
    step "The services are up: history :$HISTORY_PORT, figalize :$FIGALIZE_PORT, imagizer :$IMAGIZER_PORT"
    echo "Logs: $STATE/*.log"
    return
  fi
  start_nginx
  curl -fsSk -o /dev/null "https://127.0.0.1:$HTTPS_PORT/" || die "the site does not answer through nginx"
  step "The local stack is up: open https://127.0.0.1:$HTTPS_PORT (self-signed certificate)"
  echo "Logs: $STATE/*.log · stop: ./ci/local-stack.sh stop"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: ci/local-stack.sh [start|stop|status]" ;;
esac
