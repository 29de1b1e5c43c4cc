#!/usr/bin/env bash
# The benchmarks of issue 8, side by side, in one command:
#   bench/bench.sh            release build; every benchmark; writes BENCHMARKS.md (about
#                             2 min once built; the first release + aarch64 build takes 20-30)
#   bench/bench.sh --smoke    debug build, about a second per part; checks that the script
#                             works and writes target/bench/BENCHMARKS.smoke.md instead
#   bench/bench.sh --out F    write the report to F
#   bench/bench.sh --only read|cold   one benchmark, figures printed, no report
#   bench/bench.sh --render target/bench/results.json   the report again from a run's figures
#
# 1. GET /api/users/{id} (wrk, 32 connections): straight to users, through the gateway
#    with logs on and off, through nginx (reference proxy) and a bare proxy, and in the
#    seed's topology, ours (AUTH_MODE=remote) and a seed-style reference chain
#    (bench/examples/seed_chain.rs), each a /validate call per request; req/s, p50,
#    p99, each process's CPU per request from /proc/<pid>/stat, and wrk's own.
# 2. POST /login at BCRYPT_COST=12 vs raw bcrypt on all cores; GET / p99 meanwhile.
# 3. Cold start of each function's binary under a Lambda Runtime API stub vs a
#    hello-world lambda_http binary (bench/examples/hello.rs), also with DynamoDB
#    configured at a dead endpoint.
# 4. Stripped bootstrap and zip of each function (aarch64 with cargo lambda, as
#    deployed, and x86_64) vs hello world; peak RSS under load and under the stub.
# 5. DynamoDB calls per endpoint, counted by local/tests/integration/dynamodb_calls.rs against moto,
#    and their on-demand cost per million requests.
#
# Needs: cargo, python3, apt-get (or sudo apt-get) when wrk is missing. The measuring
# code is the `bench` workspace member (examples only, so `cargo lambda watch` does
# not offer it as a function); the driver is bench/bench.py. Not run in CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh

# wrk drives the load; nginx (Debian's nginx-light) is benchmark 1's reference proxy.
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]} with apt-get" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get install -y "${missing[@]}" >/dev/null ||
    { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y "${missing[@]}" >/dev/null; }
  # Debian starts the nginx service on install; the benchmark runs its own.
  if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
    "${sudo_cmd[@]}" service nginx stop >/dev/null 2>&1 || true
  fi
fi

tools_venv
start_moto "$(free_port)"
"$TOOLS_VENV/bin/python" -m bench.bench "$@"
