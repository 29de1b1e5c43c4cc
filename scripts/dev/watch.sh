#!/usr/bin/env bash
# Serves the Lambda functions under `cargo lambda watch` (the Lambda runtime
# emulator, rebuilding on change) with the dev env in scripts/dev/watch.env:
#   http://127.0.0.1:9000/lambda-url/auth/register
#   http://127.0.0.1:9000/lambda-url/users/users
#   http://127.0.0.1:9000/lambda-url/gateway/api/login   (forwards to the two above)
# Usage: scripts/dev/watch.sh [more cargo lambda watch options]   (WATCH_PORT=9000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/tools.sh
source scripts/tools.sh
tools_venv

port="${WATCH_PORT:-9000}"
env_file="scripts/dev/watch.env"
if [[ "$port" != 9000 ]]; then
  # The gateway's AUTH_SERVICE_URL/USER_SERVICE_URL must point at this port.
  env_file="$(mktemp "${TMPDIR:-/tmp}/watch-env.XXXXXX")"
  trap 'rm -f "$env_file"' EXIT
  sed "s#127\.0\.0\.1:9000#127.0.0.1:$port#g" scripts/dev/watch.env >"$env_file"
fi

echo "watch: functions on http://127.0.0.1:$port/lambda-url/{auth,users,gateway}/ (Ctrl-C stops)" >&2
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --env-file "$env_file" "$@"
