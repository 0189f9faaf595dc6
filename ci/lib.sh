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
