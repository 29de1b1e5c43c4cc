#!/usr/bin/env bash
# The end-to-end suites against the emulated API (`local emulate` over the bootstraps
# of `sam build`, API Gateway and DynamoDB from template.yaml) and, for comparison,
# against the local stack: scripts/steps/e2e.py on both, a stranger's check of the local
# stack's EdDSA tokens with PyJWT (scripts/steps/stranger.py), the README's curl walk-through
# (scripts/steps/readme_walk.py), schemathesis from the OpenAPI
# document the emulated API serves, the browser walk with the template's CORS, and the
# mutation check (scripts/steps/mutants.py). Run by scripts/test.sh after sam build.
#   LOCAL_BIN          the local binary (default target/debug/local, built if missing)
#   EMULATE_BUILD_DIR  sam build's output (default .aws-sam/build)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
tools_venv >/dev/null 2>&1 || tools_venv

LOCAL_BIN="${LOCAL_BIN:-target/debug/local}"
[[ -x "$LOCAL_BIN" ]] || { cargo build -q -p local; LOCAL_BIN=target/debug/local; }
BUILD_DIR="${EMULATE_BUILD_DIR:-.aws-sam/build}"
PY="$TOOLS_VENV/bin/python"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { printf -- '--- %s\n' "$*" >&2; }

# wait_up URL LOG PID: until URL answers, or fail with the log.
wait_up() {
  local i
  for ((i = 0; i < 600; i++)); do
    curl -fs "$1/" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || { cat "$2" >&2; return 1; }
    sleep 0.1
  done
  cat "$2" >&2
  return 1
}

# emulate PORT [PARAMETER=VALUE ...]: local emulate in the background. Every request
# comes from this machine, one client address: the suites register far more than
# RegisterMaxPerIp's default 20 an hour, so it is raised.
emulate() {
  local port="$1"
  shift
  "$LOCAL_BIN" emulate --port "$port" --build-dir "$BUILD_DIR" \
    --parameter-overrides BcryptCost=10 RegisterMaxPerIp=1000000 RefreshReuseIntervalSecs=2 "$@" >"$WORK/emulate-$port.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://localhost:$port" "$WORK/emulate-$port.log" "$!"
}

say "a stranger verifies the local stack's tokens: PyJWT from the discovery URL (scripts/steps/stranger.py)"
port="$(free_port)"
# Without JWT_SECRET (unset even when the caller exports one), so it signs EdDSA and
# publishes its key. A low registration limit, which the e2e suite's last group
# reaches (stranger.py's registration and the suite's earlier ones count first): the
# 429 through the gateway, X-Forwarded-For naming the client.
env -u JWT_SECRET AUTH_PORT=0 USERS_PORT=0 GATEWAY_PORT="$port" BCRYPT_COST=4 REGISTER_MAX_PER_IP=17 REFRESH_REUSE_INTERVAL_SECS=2 \
  RUST_LOG=warn "$LOCAL_BIN" >"$WORK/local.log" 2>&1 &
PIDS+=($!)
wait_up "http://127.0.0.1:$port" "$WORK/local.log" "$!"
"$PY" -m scripts.steps.stranger --base-url "http://127.0.0.1:$port"

say "e2e suite against the local stack"
"$PY" -m scripts.steps.e2e --base-url "http://127.0.0.1:$port" --expect local --register-limit 17 --reuse-interval 2

say "e2e suite against the emulated API ($BUILD_DIR)"
port="$(free_port)"
emulate "$port"
"$PY" -m scripts.steps.e2e --base-url "http://localhost:$port" --expect emulated --reuse-interval 2

say "a stranger verifies a token of the emulated API with PyJWT and the discovery URL alone (scripts/steps/stranger.py)"
"$PY" -m scripts.steps.stranger --base-url "http://localhost:$port"

say "the README's curl walk-through against the emulated API (scripts/steps/readme_walk.py)"
apt_install jq
"$PY" -m scripts.steps.readme_walk --base-url "http://localhost:$port"

say "schemathesis against the emulated API, from the openapi.json it serves"
# The stage's throttling (ThrottlingRateLimit 50/s) is raised for the fuzzer alone:
# its 429 {"message": "Too Many Requests"} is API Gateway's, not the API's (docs/emulation.md).
port="$(free_port)"
emulate "$port" ThrottlingBurstLimit=100000 ThrottlingRateLimit=100000
ST_BASE_URL="http://localhost:$port" ST_MAX_EXAMPLES="${ST_EMULATED_MAX_EXAMPLES:-50}" scripts/steps/schemathesis.sh
if grep -E '"level":"(ERROR|error)"|panicked' "$WORK/emulate-$port.log" >&2; then
  echo "test_emulated: a function logged an error or panicked under schemathesis" >&2
  exit 1
fi

say "browser walk against the emulated API (CORS from the template)"
browser_tools
BROWSER_TARGET=emulated EMULATE_BUILD_DIR="$BUILD_DIR" node scripts/steps/browser/test.mjs "$LOCAL_BIN"

say "mutation check: the template broken on purpose makes the e2e suite fail"
"$PY" -m scripts.steps.mutants --local "$LOCAL_BIN" --build-dir "$BUILD_DIR"
