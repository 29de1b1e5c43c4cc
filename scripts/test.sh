#!/usr/bin/env bash
# The one test command: installs and starts everything the tests need, then runs
# the linters and every suite. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh

step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*" >&2; }

# The installs wait on the network and the disk, cargo on the CPU: run them together.
# The emulated API runs the bootstraps `sam build` makes (.aws-sam/build/<Id>/bootstrap),
# built from the template with the builder a deploy uses (sam's cargo-lambda workflow):
# debug profile for speed, x86_64 where rustup lacks the arm64 standard library (the
# script says so). It compiles every dependency again for the explicit --target (about
# 3 min of 2 idle cores; seconds when warm), so it starts as soon as its tools are in,
# beside clippy and the test build, in a target directory of its own: cargo's lock on
# the shared one would make each wait for the other.
step "tools in the background: moto, cfn-lint, sam, cargo-lambda, schemathesis into .tools/venv, then sam build into target/sam (log: .tools/sam-build.log); chromium and playwright-core"
mkdir -p "$TOOLS_DIR"
SAM_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/sam"
{
  tools_venv >"$TOOLS_DIR/tools-install.log" 2>&1 || exit 1
  CARGO_TARGET_DIR="$SAM_TARGET_DIR" scripts/emulator/sam_build.sh >"$TOOLS_DIR/sam-build.log" 2>&1
} &
SAM_JOB=$!
browser_tools >"$TOOLS_DIR/browser-install.log" 2>&1 &
BROWSER_JOB=$!

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# The workspace build unifies features: users brings TLS (outbound/http-tls) into the
# gateway too. The gateway's Lambda build has none, and `tls` is an option of its own.
step "gateway as sam builds it (no TLS): its unit tests; with --features tls: clippy"
cargo test -q -p gateway --lib
cargo clippy -p gateway --features tls --all-targets -- -D warnings

step "tools installed"
# Waits on the background install's lock; installs again (and shows why) if it failed.
tools_venv || { cat "$TOOLS_DIR/tools-install.log" >&2; exit 1; }
wait "$BROWSER_JOB" || { cat "$TOOLS_DIR/browser-install.log" >&2; exit 1; }

step "openapi.json: OpenAPI 3.0 meta-schema, references, operation ids (scripts/checks/check_openapi.py)"
"$TOOLS_VENV/bin/python" -m scripts.checks.check_openapi openapi.json

step "docs: every Markdown link and template.yaml file name resolves in the repo (scripts/checks/check_links.py)"
"$TOOLS_VENV/bin/python" -m scripts.checks.check_links

step "docs: architecture.md's crate diagram is cargo metadata's graph (scripts/checks/check_crate_graph.py)"
"$TOOLS_VENV/bin/python" -m scripts.checks.check_crate_graph

step "DynamoDB-compatible server (moto, one request at a time) on loopback"
start_moto "$(free_port)"
create_tables

# Tests that need a server fail instead of skipping from here on.
export CI="${CI:-1}"

step "cargo tests (in-memory and DynamoDB stores, Lambda adapter, local stack)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

# The binary nextest just built (its integration tests run it): building it again with
# `cargo build -p local` would recompile for a minute and a half, because without the
# dev-dependencies cargo unifies other features.
export LOCAL_BIN="${CARGO_TARGET_DIR:-target}/debug/local"

step "DynamoDB and the gateway's forwarding over TLS: moto and an https upstream behind a throwaway CA, trusted through SSL_CERT_FILE, refused without it (scripts/steps/check_dynamodb_tls.py)"
"$TOOLS_VENV/bin/python" -m scripts.steps.check_dynamodb_tls

step "schemathesis through the gateway of the local stack, in memory and with STORE=dynamodb on moto at once (scripts/steps/schemathesis.sh)"
# Two stacks on their own ports, side by side: each pass mostly waits on the other's
# Python, so together they take little longer than the longer one alone.
ST_LOGS="$(mktemp -d)"
scripts/steps/schemathesis.sh >"$ST_LOGS/memory.log" 2>&1 &
ST_MEMORY=$!
STORE=dynamodb ST_MAX_EXAMPLES=50 scripts/steps/schemathesis.sh >"$ST_LOGS/dynamodb.log" 2>&1 &
ST_DYNAMODB=$!
st_failed=0
wait "$ST_MEMORY" || st_failed=1
wait "$ST_DYNAMODB" || st_failed=$((st_failed + 2))
for store in memory dynamodb; do
  printf -- '--- schemathesis, %s store ---\n' "$store" >&2
  tail -n 15 "$ST_LOGS/$store.log" >&2
done
if ((st_failed)); then
  ((st_failed & 1)) && cat "$ST_LOGS/memory.log" >&2
  ((st_failed & 2)) && cat "$ST_LOGS/dynamodb.log" >&2
  echo "schemathesis failed" >&2
  exit 1
fi

step "DynamoDB accounts table after schemathesis: every account has its claims, none orphaned"
SCAN_TEST=auth_e2e::the_accounts_table_of_the_environment_is_consistent
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --run-ignored only --no-fail-fast -E "test(=$SCAN_TEST)"
else
  cargo test -q -p local --test integration -- --ignored --exact "$SCAN_TEST"
fi

step "a browser page on another origin through the local stack's gateway (scripts/steps/browser/test.mjs, chromium)"
browser_tools
node scripts/steps/browser/test.mjs "$LOCAL_BIN"

step "template: cfn-lint"
cfn-lint template.yaml

step "template: sam validate --lint"
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" sam validate --lint --template-file template.yaml

step "template: routes, least privilege, tables, secret (scripts/checks/check_template.py)"
"$TOOLS_VENV/bin/python" -m scripts.checks.check_template template.yaml

step "sam build finished: the bootstraps of template.yaml's functions"
wait "$SAM_JOB" || { cat "$TOOLS_DIR/tools-install.log" "$TOOLS_DIR/sam-build.log" >&2; echo "sam build failed" >&2; exit 1; }
grep -E '^sam_build:' "$TOOLS_DIR/sam-build.log" >&2 || true

step "IAM on moto: each function's template policy enforced, per table (scripts/steps/test_iam.py)"
"$TOOLS_VENV/bin/python" -m scripts.steps.test_iam

step "the emulated API of template.yaml over those bootstraps: e2e, schemathesis, browser, mutants (scripts/steps/test_emulated.sh)"
scripts/steps/test_emulated.sh

step "functions under the Lambda runtime emulator (cargo lambda watch + invoke)"
scripts/steps/test_lambda.sh

step "all checks passed"
