#!/usr/bin/env bash
# Terraform steps of the pipeline, on terraform/environments/prod:
#
#   ci/terraform.sh fmt        terraform fmt -check over terraform/
#   ci/terraform.sh validate   init without a backend, then validate
#   ci/terraform.sh plan       init with the backend, plan into terraform/environments/prod/tfplan
#   ci/terraform.sh apply      apply exactly that saved plan
#
# plan and apply need the cloud's credentials in the environment, terraform.tfvars (or
# TF_VAR_* variables) and backend.tf (see terraform/README.md); the pipeline writes both from
# its secrets. ./ci/check-terraform.sh is the offline check that ./ci/test.sh runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

root=terraform/environments/prod
command -v terraform >/dev/null || die "terraform is not installed"
export TF_IN_AUTOMATION=1 TF_INPUT=0

case "${1:-}" in
  fmt) terraform fmt -check -recursive -diff terraform ;;
  validate)
    terraform -chdir="$root" init -backend=false
    terraform -chdir="$root" validate
    ;;
  plan)
    [ -f "$root/backend.tf" ] || die "$root/backend.tf is missing: the state must be remote"
    terraform -chdir="$root" init
    terraform -chdir="$root" plan -out=tfplan
    terraform -chdir="$root" show -no-color tfplan >"$root/tfplan.txt"
    ;;
  apply)
    [ -f "$root/tfplan" ] || die "no saved plan: run ci/terraform.sh plan first"
    terraform -chdir="$root" init
    terraform -chdir="$root" apply tfplan
    ;;
  *) die "usage: ci/terraform.sh fmt|validate|plan|apply" ;;
esac
