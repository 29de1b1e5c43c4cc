#!/usr/bin/env bash
# schemathesis against the local stack through the gateway, authenticated with a real
# token: no 5xx, every status, content type, body and header as openapi.json says, no
# request slower than the timeout. Run by scripts/test.sh; alone: scripts/steps/schemathesis.sh
#   ST_MAX_EXAMPLES  examples per operation and phase (default 150)
#   ST_SEED          reproduce a run (schemathesis prints the seed it used)
#   STORE            memory (default) or dynamodb (then DYNAMODB_ENDPOINT and tables)
#   LOCAL_BIN        the local stack binary to run (default: cargo build -p local)
#   ST_BASE_URL      an API already running (e.g. the emulated one of `local emulate`):
#                    test it, from the OpenAPI document it serves, instead of a stack
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
tools_venv >/dev/null 2>&1 || tools_venv

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method
WORK="$(mktemp -d)"
STACK_PID=""
cleanup() {
  if [[ -n "$STACK_PID" ]] && kill -0 "$STACK_PID" 2>/dev/null; then
    kill -INT "$STACK_PID" 2>/dev/null || true
    wait "$STACK_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -n "${ST_BASE_URL:-}" ]]; then
  GW="${ST_BASE_URL%/}"
  curl -fsS "$GW/openapi.json" >/dev/null
else
  if [[ -z "${LOCAL_BIN:-}" ]]; then
    cargo build -q -p local
    LOCAL_BIN=target/debug/local
  fi
  port="$(free_port)"
  AUTH_PORT=0 USERS_PORT=0 GATEWAY_PORT="$port" \
    JWT_SECRET="schemathesis-$(head -c 24 /dev/urandom | base64)" \
    BCRYPT_COST=4 LOGIN_MAX_FAILURES_PER_USER=1000000 LOGIN_MAX_FAILURES_PER_IP=1000000 \
    REGISTER_MAX_PER_IP=1000000 \
    STORE="${STORE:-memory}" RUST_LOG="${RUST_LOG:-warn}" NO_COLOR=1 \
    "$LOCAL_BIN" >"$WORK/stack.log" 2>&1 &
  STACK_PID=$!
  GW="http://127.0.0.1:$port"
  for ((i = 0; i < 100; i++)); do
    curl -fs "$GW/" >/dev/null 2>&1 && break
    kill -0 "$STACK_PID" 2>/dev/null || { cat "$WORK/stack.log" >&2; exit 1; }
    sleep 0.1
  done
fi

# post PATH JSON: the answer's body; fails unless 200.
post() {
  curl -fsS -X POST "$GW$1" -H 'content-type: application/json' -d "$2"
}
field() { "$TOOLS_VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

user="st_$(date +%s)"
password="fuzzing-password-1"
user_id="$(post /api/register "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"$password\"}" | field user_id)"
login() { post /api/login "{\"username\":\"$user\",\"password\":\"$password\"}" | field token; }
token="$(login)"
logout_token="$(login)"
sessions_token="$(login)"
# A profile of the caller, so reads and owner-only writes reach their 200 paths.
curl -fsS -X POST "$GW/api/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
  -d "{\"user_id\":\"$user_id\",\"username\":\"$user\",\"email\":\"$user@example.com\",\"full_name\":\"Fuzz\",\"bio\":\"\"}" >/dev/null

run_st() {
  (cd "$WORK" && st run "$GW/openapi.json" \
    --checks "$CHECKS" \
    --max-examples "${ST_MAX_EXAMPLES:-150}" \
    ${ST_SEED:+--seed "$ST_SEED"} \
    --request-timeout 5 --max-response-time 5 \
    --generation-database none --workers 2 --no-color \
    --warnings off \
    "$@")
}

# The password of changePassword and deleteAccount is never guessed: they answer
# 400, 401 or 429 here, and their 200s are left to the suites that know it.
echo "schemathesis: every operation but logout and endSession, as $user" >&2
run_st -H "Authorization: Bearer $token" --exclude-operation-id-regex '^(logout|endSession)$'
# Logout ends the session of the token it is called with, so it gets its own.
echo "schemathesis: logout, with a second token" >&2
run_st -H "Authorization: Bearer $logout_token" --include-operation-id logout
# endSession ends any session of the user, the first token's too once the stateful
# phase feeds it the ids listSessions answers: it runs last, with a third token.
echo "schemathesis: listSessions and endSession, with a third token" >&2
run_st -H "Authorization: Bearer $sessions_token" --include-operation-id-regex '^(listSessions|endSession)$'

if [[ -f "$WORK/stack.log" ]] && grep -q 'panicked' "$WORK/stack.log"; then
  grep 'panicked' "$WORK/stack.log" >&2
  echo "schemathesis: a handler panicked" >&2
  exit 1
fi
