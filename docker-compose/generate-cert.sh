#!/usr/bin/env bash
# Makes the self-signed certificate the ingress serves, for localhost and 127.0.0.1: tls/tls.crt
# and tls/tls.key beside this script (git-ignored), kept while valid for a day more. Run it
# before the first `docker compose up`; browsers warn about the certificate until it is
# accepted once or trusted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/../ci/local-cert.sh" "$here/tls"
