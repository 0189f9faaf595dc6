#!/usr/bin/env bash
# Makes a PostgreSQL server available on 127.0.0.1:5432 for the tests, idempotently:
# one already listening is reused; otherwise Debian's package is installed (if needed) and its
# cluster started, with the password the tests use.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

if port_open 5432; then
  echo "PostgreSQL already listens on 127.0.0.1:5432: reusing it"
  exit 0
fi

if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  echo "Installing PostgreSQL from Debian's packages"
  apt_install postgresql
fi
version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
if ! pg_lsclusters --no-header | awk '{print $1, $2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
wait_for_port 5432 20 || die "PostgreSQL did not start on 127.0.0.1:5432"
# Debian's cluster asks for a password on TCP: give the tests' user the tests' password.
su postgres -c "psql -q -c \"alter user postgres password 'postgres'\""
echo "PostgreSQL $version started on 127.0.0.1:5432"
