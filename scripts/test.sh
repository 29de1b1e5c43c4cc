#!/usr/bin/env bash
# The one test command: installs and starts everything the tests need, then runs
# the linters and every suite. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh

step() { printf '\n==> [%4ds] %s\n' "$SECONDS" "$*" >&2; }

# The installs wait on the network and the disk, cargo on the CPU: run them together.
step "tools in the background: moto, cfn-lint, sam, cargo-lambda, schemathesis into .tools/venv; chromium and playwright-core"
mkdir -p "$TOOLS_DIR"
tools_venv >"$TOOLS_DIR/tools-install.log" 2>&1 &
TOOLS_JOB=$!
browser_tools >"$TOOLS_DIR/browser-install.log" 2>&1 &
BROWSER_JOB=$!

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "tools installed"
wait "$TOOLS_JOB" || { cat "$TOOLS_DIR/tools-install.log" >&2; exit 1; }
tools_venv
wait "$BROWSER_JOB" || { cat "$TOOLS_DIR/browser-install.log" >&2; exit 1; }

step "openapi.json: OpenAPI 3.0 meta-schema, references, operation ids (scripts/check_openapi.py)"
"$TOOLS_VENV/bin/python" scripts/check_openapi.py openapi.json

step "docs: every Markdown link and template.yaml file name resolves in the repo (scripts/check_links.py)"
"$TOOLS_VENV/bin/python" scripts/check_links.py

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

step "schemathesis through the gateway of the local stack (scripts/schemathesis.sh)"
scripts/schemathesis.sh

step "schemathesis again with STORE=dynamodb on moto, smaller budget"
STORE=dynamodb ST_MAX_EXAMPLES=50 scripts/schemathesis.sh

step "DynamoDB accounts table after schemathesis: every account has its claims, none orphaned"
cargo test -q -p local --test integration -- --ignored --exact auth_e2e::the_accounts_table_of_the_environment_is_consistent
step "a browser page on another origin through the local stack's gateway (scripts/browser/test.mjs, chromium)"
browser_tools
cargo build -p local --quiet
node scripts/browser/test.mjs "${CARGO_TARGET_DIR:-target}/debug/local"

step "template: cfn-lint"
cfn-lint template.yaml

step "template: sam validate --lint"
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" sam validate --lint --template-file template.yaml

step "template: routes, least privilege, tables, secret (scripts/check_template.py)"
"$TOOLS_VENV/bin/python" scripts/check_template.py template.yaml

# The emulated API runs the bootstraps `sam build` makes (.aws-sam/build/<Id>/bootstrap),
# so they are built here from the template with the builder a deploy uses (sam's
# cargo-lambda workflow): debug profile for speed, x86_64 where rustup lacks the arm64
# standard library (the script says so). From an empty target/ this takes about 3 min
# on 2 idle cores: cargo-lambda builds for an explicit --target (zig linking), so
# nothing of the test build above is reused. Warm, it takes about 4 s.
step "sam build (debug profile; .aws-sam/build/<Id>/bootstrap checked: executable ELF of the architecture built)"
scripts/sam_build.sh

step "functions under the Lambda runtime emulator (cargo lambda watch + invoke)"
scripts/test_lambda.sh

step "all checks passed"
