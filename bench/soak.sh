#!/usr/bin/env bash
# Soak test (manual, not part of CI): builds the release binary, starts the local stack,
# registers a few users with profiles, then drives mixed traffic through the gateway
# with wrk (bench/soak.lua): reads of single profiles and pages, updates of the caller's
# own profile, token validations, and ~20 % deliberate 4xx (bad and unknown ids, bad
# tokens, someone else's profile, no token). Reports answers by status class, socket
# errors, latency and the process's RSS (VmRSS) before and after, and writes them to
# $SOAK_OUT. Pass criteria: no 5xx, no socket errors, RSS growth under 10 % from the
# end of the warm-up to the end of the run.
#
# Usage: bench/soak.sh
#   SOAK_DURATION   seconds of traffic after the warm-up (default 120)
#   SOAK_WARMUP     seconds of warm-up traffic before the "before" RSS (default 10)
#   SOAK_CONNECTIONS, SOAK_THREADS   wrk connections and threads (default 32, 2)
#   SOAK_USERS      users registered, each with a profile (default 50)
#   SOAK_OUT        where the figures go (default target/soak/soak-<time>.md)
#   RUST_LOG        the stack's log filter (default warn; info logs every request)
# Needs wrk (installed with apt-get when missing and allowed) and python3.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${SOAK_DURATION:-120}"
WARMUP="${SOAK_WARMUP:-10}"
CONNECTIONS="${SOAK_CONNECTIONS:-32}"
THREADS="${SOAK_THREADS:-2}"
USERS="${SOAK_USERS:-50}"
OUT="${SOAK_OUT:-target/soak/soak-$(date -u +%Y%m%dT%H%M%SZ).md}"
mkdir -p "$(dirname "$OUT")"

if ! command -v wrk >/dev/null; then
  echo "soak: installing wrk" >&2
  apt-get install -y wrk >/dev/null || { echo "soak: wrk is missing (apt-get install wrk)" >&2; exit 1; }
fi

echo "soak: building the release binary" >&2
cargo build -q --release -p local

port="$(python3 -c 'from scripts.lib.net import free_port; print(free_port())')"
LOG="$(mktemp)"
AUTH_PORT=0 USERS_PORT=0 GATEWAY_PORT="$port" \
  JWT_SECRET="soak-$(head -c 24 /dev/urandom | base64)" \
  BCRYPT_COST="${BCRYPT_COST:-4}" LOGIN_MAX_FAILURES_PER_USER=1000000 LOGIN_MAX_FAILURES_PER_IP=1000000 \
  REGISTER_MAX_PER_IP=1000000 \
  RUST_LOG="${RUST_LOG:-warn}" NO_COLOR=1 \
  target/release/local >"$LOG" 2>&1 &
PID=$!
trap 'kill -INT "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
GW="http://127.0.0.1:$port"
for ((i = 0; i < 100; i++)); do
  curl -fs "$GW/" >/dev/null 2>&1 && break
  sleep 0.1
done

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
post() { curl -fsS -X POST "$GW$1" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} -d "$2"; }
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

rss_start="$(rss_kib)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "soak: registering $USERS users with profiles" >&2
ids=()
token=""
for ((n = 0; n < USERS; n++)); do
  name="soak_user_$n"
  id="$(post /api/register "{\"username\":\"$name\",\"email\":\"$name@example.com\",\"password\":\"soak-password-1\"}" | field user_id)"
  tok="$(post /api/login "{\"username\":\"$name\",\"password\":\"soak-password-1\"}" | field token)"
  post /api/users "{\"user_id\":\"$id\",\"username\":\"$name\",\"email\":\"$name@example.com\",\"full_name\":\"Soak $n\",\"bio\":\"\"}" "$tok" >/dev/null
  ids+=("$id")
  if ((n == 0)); then token="$tok"; fi
done
others="$(IFS=,; echo "${ids[*]:1}")"
export TOKEN="$token" USER_ID="${ids[0]}" OTHER_IDS="$others"

run_wrk() {
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${1}s" --timeout 5s -s bench/soak.lua "$GW" | tee -a "$2" >&2
}
WRK_OUT="$(mktemp)"
echo "soak: ${WARMUP}s warm-up" >&2
run_wrk "$WARMUP" /dev/null
rss_before="$(rss_kib)"
echo "soak: ${DURATION}s of mixed traffic, $CONNECTIONS connections, RSS ${rss_before} KiB" >&2
run_wrk "$DURATION" "$WRK_OUT"
rss_after="$(rss_kib)"
sleep 2
rss_idle="$(rss_kib)"
alive=yes
kill -0 "$PID" 2>/dev/null || alive=no

line="$(grep '^SOAK ' "$WRK_OUT")"
rm -f "$WRK_OUT"
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" ${line#SOAK }"; }
growth="$(python3 -c "print(f'{($rss_after - $rss_before) * 100 / $rss_before:+.1f}')")"
errors=$(($(get server_5xx) + $(get other) + $(get socket_connect) + $(get socket_read) + $(get socket_write) + $(get socket_timeout)))
verdict=pass
if ((errors > 0)) || [[ "$alive" != yes ]] || python3 -c "import sys; sys.exit(0 if $growth >= 10 else 1)"; then
  verdict=FAIL
fi

cat >"$OUT" <<MD
| figure | value |
|---|---|
| date (UTC) | $(date -u +%Y-%m-%dT%H:%MZ) |
| machine | $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average before: ${load_before}, after: $(cut -d' ' -f1-3 /proc/loadavg) |
| build | \`cargo build --release -p local\` (lto, codegen-units=1), STORE=memory, RUST_LOG=${RUST_LOG:-warn} |
| load | wrk $THREADS threads, $CONNECTIONS connections, $(get duration_s) s after a ${WARMUP} s warm-up, $USERS users |
| requests | $(get requests) ($(get rps)/s) |
| 2xx / 4xx | $(get ok_2xx) / $(get client_4xx) |
| 5xx / other | $(get server_5xx) / $(get other) |
| socket errors (connect, read, write, timeout) | $(get socket_connect), $(get socket_read), $(get socket_write), $(get socket_timeout) |
| latency p50 / p99 / max | $(get p50_ms) ms / $(get p99_ms) ms / $(get max_ms) ms |
| RSS at start / after setup and warm-up / after the run / 2 s later | ${rss_start} / ${rss_before} / ${rss_after} / ${rss_idle} KiB |
| RSS growth over the run | ${growth} % |
| process alive at the end | ${alive} |
| verdict (no 5xx or socket errors, growth < 10 %) | ${verdict} |
MD
cat "$OUT"
echo "soak: figures written to $OUT" >&2
[[ "$verdict" == pass ]]
