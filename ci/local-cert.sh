#!/usr/bin/env bash
# Makes a self-signed TLS certificate for the local HTTPS ingress, idempotently:
#
#   ./ci/local-cert.sh DIR     writes DIR/tls.crt and DIR/tls.key (kept while valid for a day more)
#
# The certificate names localhost and 127.0.0.1 and is valid for 90 days. Browsers will warn
# about it (no authority signed it): accept it once, or trust DIR/tls.crt locally.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

dir=${1:?usage: ci/local-cert.sh DIR}
mkdir -p "$dir"
crt="$dir/tls.crt" key="$dir/tls.key"
command -v openssl >/dev/null || apt_install openssl

if [ -s "$crt" ] && [ -s "$key" ] && openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null 2>&1; then
  exit 0
fi
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
  -subj "/CN=localhost/O=Figachechnaya local" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$key" -out "$crt" 2>/dev/null
chmod 644 "$crt"
echo "Self-signed certificate for localhost and 127.0.0.1: $crt"
