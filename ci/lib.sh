# Helpers shared by the scripts in ci/. Source it; do not run it.

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
