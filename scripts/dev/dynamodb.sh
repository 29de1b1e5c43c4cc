#!/usr/bin/env bash
# Local DynamoDB (moto) with the project's tables, for running the service by hand.
# Usage: scripts/dev/dynamodb.sh   (DYNAMODB_PORT, ACCOUNTS_TABLE, PROFILES_TABLE, SECURITY_TABLE optional)
# Runs until Ctrl-C.
set -euo pipefail

# shellcheck source=scripts/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tools.sh"

trap stop_moto EXIT
trap 'echo >&2; stop_moto; exit 0' INT TERM

tools_venv
start_moto "${DYNAMODB_PORT:-8000}"
create_tables

cat <<EOF

# DynamoDB (moto) is running. In another shell:
export STORE=dynamodb
export DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT
export ACCOUNTS_TABLE=$ACCOUNTS_TABLE
export PROFILES_TABLE=$PROFILES_TABLE
export SECURITY_TABLE=$SECURITY_TABLE
export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export AWS_REGION=$AWS_REGION
export AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION
# then: cargo run -p local

# Ctrl-C here stops moto (data is in memory and is lost).
EOF

set +e
wait "$MOTO_PID"
rc=$?
set -e
echo "dynamodb.sh: moto exited on its own (status $rc); see $TOOLS_DIR/moto-${MOTO_PORT:-}.log" >&2
exit 1
