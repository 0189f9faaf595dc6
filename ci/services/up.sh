#!/usr/bin/env bash
# Makes the three backing services of the tests available, reusing any already running:
# PostgreSQL on 127.0.0.1:5432, a Kafka-protocol broker (Tansu) on 127.0.0.1:9092, S3 (Garage)
# on 127.0.0.1:3900. Each script installs what is missing (see their headers).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=ci/lib.sh
. ci/lib.sh

step "Backing services: PostgreSQL, a Kafka-protocol broker (Tansu), S3 (Garage)"
./ci/services/postgres.sh
./ci/services/kafka.sh
./ci/services/s3.sh
