#!/usr/bin/env bash
# The functions under the Lambda runtime emulator (cargo lambda watch + invoke);
# see scripts/steps/test_lambda.py. Usage: scripts/steps/test_lambda.sh   (called by scripts/test.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
tools_venv
# The whole run is bounded too; the driver stops watch on SIGTERM.
exec timeout -k 20 "${LAMBDA_TEST_TIMEOUT:-1500}" "$TOOLS_VENV/bin/python" -m scripts.steps.test_lambda
