#!/usr/bin/env bash
# Checks terraform/ offline, with no cloud account: ci/check_terraform.py parses every file with
# python-hcl2 (pinned, from PyPI) and checks variables, module calls, providers, chart
# versions, secrets and sensitive values (its docstring lists every check). Then, when a
# terraform binary is on the PATH: `terraform fmt -check` on every file, and `terraform init
# -backend=false` + `terraform validate` of each root configuration in a scratch copy of
# terraform/ (so no .terraform folder or lock file lands in the tree). validate needs the
# providers, so where init cannot download them it is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

step "python-hcl2"
# python-hcl2 with its dependencies pinned too, so every run parses with the same code.
bin=$(pip_tools terraform 'python-hcl2==8.1.4' 'lark==1.3.1' 'regex==2026.11.19')
"$bin/python" -c 'import importlib.metadata as m; print("python-hcl2", m.version("python-hcl2"))'

step "Terraform code: syntax, variables, modules, providers, versions, secrets"
"$bin/python" ci/check_terraform.py terraform

if ! command -v terraform >/dev/null; then
  step "terraform fmt and validate"
  echo "terraform not found: fmt and validate skipped"
  step "Terraform checks passed"
  exit 0
fi

step "terraform fmt"
terraform version | head -n 1
terraform fmt -check -recursive -diff terraform
# fmt reads the example files (HCL under another name) only from standard input.
while IFS= read -r -d '' file; do
  terraform fmt - <"$file" | diff -u --label "$file" --label "$file (terraform fmt)" "$file" - \
    || die "$file is not formatted as terraform fmt formats it"
done < <(find terraform -name '*.example' -not -path '*/.terraform/*' -print0)
echo "every file is formatted"

step "terraform validate"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tar -C . --exclude=.terraform --exclude='*.tfstate*' -cf - terraform | tar -C "$scratch" -xf -
# What init says when it cannot reach the provider registry (or a mirror), as opposed to a
# mistake in the configuration.
unreachable='could not connect to|dial tcp|no such host|i/o timeout|connection refused'
unreachable+='|TLS handshake timeout'
for root in "$scratch"/terraform/environments/*/; do
  name=${root#"$scratch"/}
  log="$scratch/init.log"
  if terraform -chdir="$root" init -backend=false -input=false -no-color >"$log" 2>&1; then
    terraform -chdir="$root" validate -no-color
  elif grep -Eq "$unreachable" "$log"; then
    echo "${name%/}: providers cannot be downloaded (registry out of reach): validate skipped"
  else
    cat "$log" >&2
    die "${name%/}: terraform init failed"
  fi
done

step "Terraform checks passed"
