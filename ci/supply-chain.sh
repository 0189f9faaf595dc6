#!/usr/bin/env bash
# The supply chain, with cargo-deny and deny.toml: licences (permissive only), bans (no
# wildcard requirement, no OpenSSL), sources (crates.io only), and the RustSec advisories.
#
# The advisories need the RustSec database, which cargo-deny clones from GitHub. Where GitHub
# cannot be reached (an offline machine), they are checked against a copy already in
# ~/.cargo/advisory-dbs if one is there, and otherwise skipped with a notice; the hosted
# pipeline always checks them. FIGACHECHNAYA_REQUIRE_ADVISORIES=1 makes a skip an error.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

cargo_tool deny 0.20.2

step "cargo deny: licences, bans, sources"
cargo deny --locked check --hide-inclusion-graph bans licenses sources

step "cargo deny: advisories (RustSec)"
if timeout 20 git ls-remote --exit-code https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  cargo deny --locked check --hide-inclusion-graph advisories
elif compgen -G "$HOME/.cargo/advisory-dbs/*" >/dev/null; then
  echo "GitHub is out of reach: checking against the database in ~/.cargo/advisory-dbs as it is"
  cargo deny --locked check --hide-inclusion-graph --disable-fetch advisories
elif [ "${FIGACHECHNAYA_REQUIRE_ADVISORIES:-0}" = 1 ]; then
  die "the RustSec advisory database cannot be fetched from GitHub"
else
  echo "SKIPPED: the RustSec advisory database cannot be fetched from GitHub and no copy is"
  echo "in ~/.cargo/advisory-dbs; the hosted pipeline checks the advisories"
fi
