#!/usr/bin/env bash
# Prints the product's version: [workspace.package] version in Cargo.toml, the one source that
# --version, the build-info metric, the images' labels and their tags all report.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$version" ] || { echo "error: no [workspace.package] version in Cargo.toml" >&2; exit 1; }
echo "$version"
