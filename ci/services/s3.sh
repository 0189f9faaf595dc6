#!/usr/bin/env bash
# Makes an S3 server available for the tests, idempotently: Garage 2.5.0, single node, with
# the tests' bucket and key. A Garage already running from this script is reused; the
# binary is built once with `cargo install` (about 20 minutes) and kept in ~/.cargo/bin.
#
#   S3 API      http://127.0.0.1:3900  (region "garage")
#   web (public reads of the bucket)  http://<bucket>.web.localhost:3902
#
# Settings (environment), for a test that needs a Garage of its own:
#   GARAGE_STATE   its configuration, data, log and pid: $SERVICES_DIR/garage
#   GARAGE_PORT    the S3 API's port, 3900; RPC, web and admin take the next three
#   GARAGE_BUCKET  the bucket made, with the tests' key allowed to it: figachechnaya-images
#
# Prints nothing secret worth hiding: the key is a fixed, local test credential.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

readonly VERSION=$GARAGE_VERSION
readonly BUCKET=${GARAGE_BUCKET:-$S3_LOCAL_BUCKET} KEY_ID=$S3_LOCAL_KEY_ID KEY_SECRET=$S3_LOCAL_KEY_SECRET
readonly STATE="${GARAGE_STATE:-$SERVICES_DIR/garage}"
readonly PORT=${GARAGE_PORT:-3900}
readonly CONFIG="$STATE/garage.toml"

GARAGE=$(garage_bin "$VERSION")
if [ -z "$GARAGE" ]; then
  echo "Building Garage $VERSION (cargo install, about 20 minutes; kept in ~/.cargo/bin)"
  cargo install garage --version "$VERSION" --locked --quiet
  GARAGE="$HOME/.cargo/bin/garage"
fi

mkdir -p "$STATE/meta" "$STATE/data"
if [ ! -f "$CONFIG" ]; then
  cat >"$CONFIG" <<TOML
metadata_dir = "$STATE/meta"
data_dir = "$STATE/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((PORT + 1))"
rpc_public_addr = "127.0.0.1:$((PORT + 1))"
rpc_secret = "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"

[s3_api]
api_bind_addr = "127.0.0.1:$PORT"
s3_region = "garage"
root_domain = ".s3.localhost"

[s3_web]
bind_addr = "127.0.0.1:$((PORT + 2))"
root_domain = ".web.localhost"
index = "index.html"

[admin]
api_bind_addr = "127.0.0.1:$((PORT + 3))"
TOML
fi
g() { "$GARAGE" -c "$CONFIG" "$@"; }

if port_open "$PORT"; then
  echo "Garage already listens on 127.0.0.1:$PORT: reusing it"
else
  echo "Starting Garage $VERSION (log: $STATE/garage.log)"
  nohup "$GARAGE" -c "$CONFIG" server >"$STATE/garage.log" 2>&1 &
  echo $! >"$STATE/garage.pid"
  wait_for_port "$PORT" 30 || { tail -n 20 "$STATE/garage.log" >&2; die "Garage did not start"; }
fi

# One node, one zone; the layout is applied once.
node=""
for _ in $(seq 1 50); do
  node=$(g node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node" ] && break
  sleep 0.2
done
[ -n "$node" ] || die "cannot read Garage's node id"
layout=$(g layout show 2>/dev/null || true)
if grep -q "Current cluster layout version: 0" <<<"$layout"; then
  g layout assign -z dc1 -c 1G "$node" >/dev/null
  g layout apply --version 1 >/dev/null
fi
g key info "$KEY_ID" >/dev/null 2>&1 || g key import --yes -n figachechnaya-tests "$KEY_ID" "$KEY_SECRET" >/dev/null
g bucket info "$BUCKET" >/dev/null 2>&1 || g bucket create "$BUCKET" >/dev/null
g bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
g bucket website --allow "$BUCKET" >/dev/null
echo "Garage ready: bucket $BUCKET on http://127.0.0.1:$PORT, web on http://$BUCKET.web.localhost:$((PORT + 2))"
