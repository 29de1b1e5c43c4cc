# shellcheck shell=bash
# Helpers for local runs and CI. Source it, don't run it:
#   source scripts/tools.sh; tools_venv; start_moto; create_tables; ...; stop_moto
# Strict mode for scripts; left off in interactive shells so errors don't close them.
[[ $- == *i* ]] || set -euo pipefail

TOOLS_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$TOOLS_LIB_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$TOOLS_LIB_DIR/.." && pwd))"
TOOLS_DIR="$REPO/.tools"
TOOLS_VENV="$TOOLS_DIR/venv"
export REPO TOOLS_DIR TOOLS_VENV

_tools_log() { echo "tools: $*" >&2; }

# The venv's python when it exists (no pyenv shim overhead), else python3.
_tools_py() {
  if [[ -x "$TOOLS_VENV/bin/python" ]]; then echo "$TOOLS_VENV/bin/python"; else echo python3; fi
}

# Create/refresh .tools/venv from the pinned requirements; put its bin first on PATH.
tools_venv() {
  local req="$TOOLS_LIB_DIR/requirements-tools.txt"
  local con="$TOOLS_LIB_DIR/constraints-tools.txt"
  local stamp="$TOOLS_VENV/.tools-stamp"
  local py="${TOOLS_PYTHON:-python3}"
  local want
  want="$(cat "$req" "$con" | sha256sum | cut -d' ' -f1)" || return 1
  mkdir -p "$TOOLS_DIR" || return 1

  if [[ -x "$TOOLS_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    _tools_log "venv up to date ($TOOLS_VENV)"
  else
    # Lock so parallel callers don't install into the same venv at once.
    (
      exec 9>"$TOOLS_DIR/venv.lock"
      if command -v flock >/dev/null; then flock 9 || exit 1; fi
      if [[ -x "$TOOLS_VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        exit 0
      fi
      if ! "$TOOLS_VENV/bin/python" -c '' 2>/dev/null; then
        _tools_log "creating venv at $TOOLS_VENV ($("$py" -V 2>&1))"
        rm -rf "$TOOLS_VENV"
        "$py" -m venv "$TOOLS_VENV" || exit 1
      fi
      local log="$TOOLS_DIR/pip-install.log"
      _tools_log "installing pinned tools (a few minutes on a fresh machine; log: $log)"
      if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$TOOLS_VENV/bin/python" -m pip install \
          --no-input -r "$req" -c "$con" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        _tools_log "pip install failed (see $log)"
        exit 1
      fi
      echo "$want" >"$stamp"
      _tools_log "tools installed"
    ) || return 1
  fi

  case ":$PATH:" in
    *":$TOOLS_VENV/bin:"*) ;;
    *) PATH="$TOOLS_VENV/bin:$PATH" ;;
  esac
  export PATH
  # No SAM usage reporting (no network to send it to anyway).
  export SAM_CLI_TELEMETRY=0
  _tools_log "PATH now starts with $TOOLS_VENV/bin"
}

# Runs Python code with scripts.lib importable (from the repository's root).
_tools_lib_py() {
  (cd "$REPO" && "$(_tools_py)" -c "$@")
}

# Print a free TCP port on 127.0.0.1.
free_port() {
  _tools_lib_py 'from scripts.lib.net import free_port
print(free_port())'
}

# Exit 0 if something answers HTTP on 127.0.0.1:$1 (any status code counts).
_tools_http_up() {
  _tools_lib_py 'import sys
from scripts.lib.net import answering
sys.exit(0 if answering(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1) else 1)' "$1" 2>/dev/null
}

# Exit 0 if the TCP port on 127.0.0.1 is already taken.
_tools_port_busy() {
  _tools_lib_py 'import sys
from scripts.lib.net import listening
sys.exit(0 if listening(int(sys.argv[1])) else 1)' "$1"
}

# Start moto (DynamoDB mock) in the background on 127.0.0.1:[port], one request at a
# time (scripts/emulator/moto_serial.py: moto_server's own threads would race its transactions).
start_moto() {
  local port="${1:-}"
  if [[ -z "$port" ]]; then port="$(free_port)" || return 1; fi
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    _tools_log "bad port: $port"
    return 1
  fi
  if [[ -n "${MOTO_PID:-}" ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
    _tools_log "moto already running (pid $MOTO_PID); stop_moto first"
    return 1
  fi
  if ! "$TOOLS_VENV/bin/python" -c 'import moto.server' 2>/dev/null; then
    _tools_log "moto missing: run tools_venv first"
    return 1
  fi
  if _tools_port_busy "$port"; then
    _tools_log "port $port on 127.0.0.1 is already in use"
    return 1
  fi
  local log="$TOOLS_DIR/moto-$port.log"
  _tools_log "starting moto on 127.0.0.1:$port (log: $log)"
  "$TOOLS_VENV/bin/python" "$TOOLS_LIB_DIR/emulator/moto_serial.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  MOTO_PORT="$port"
  export MOTO_PID MOTO_PORT

  local i
  for ((i = 0; i < 150; i++)); do
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      tail -n 20 "$log" >&2
      _tools_log "moto exited before answering on port $port"
      unset MOTO_PID MOTO_PORT
      return 1
    fi
    if _tools_http_up "$port"; then break; fi
    sleep 0.2
  done
  if ((i == 150)); then
    tail -n 20 "$log" >&2
    _tools_log "moto did not answer on port $port within 30 s"
    stop_moto
    return 1
  fi

  export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  # Clean up on exit unless the caller already has an EXIT trap.
  if [[ -z "$(trap -p EXIT)" ]]; then trap stop_moto EXIT; fi
  _tools_log "moto up: DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT (pid $MOTO_PID)"
}

# Stop the moto started by start_moto. Safe to call twice and from traps.
stop_moto() {
  local pid="${MOTO_PID:-}"
  [[ -n "$pid" ]] || return 0
  unset MOTO_PID MOTO_PORT
  if kill -0 "$pid" 2>/dev/null; then
    _tools_log "stopping moto (pid $pid)"
    kill "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
  return 0
}

# Create the accounts/profiles/security tables at $DYNAMODB_ENDPOINT (skips existing ones).
create_tables() {
  if [[ -z "${DYNAMODB_ENDPOINT:-}" ]]; then
    _tools_log "DYNAMODB_ENDPOINT is not set (start_moto first)"
    return 1
  fi
  export ACCOUNTS_TABLE="${ACCOUNTS_TABLE:-accounts}"
  export PROFILES_TABLE="${PROFILES_TABLE:-profiles}"
  export SECURITY_TABLE="${SECURITY_TABLE:-security}"
  _tools_log "creating tables $ACCOUNTS_TABLE, $PROFILES_TABLE, $SECURITY_TABLE at $DYNAMODB_ENDPOINT"
  (cd "$REPO" && "$TOOLS_VENV/bin/python" -m scripts.emulator.create_tables \
    --endpoint "$DYNAMODB_ENDPOINT" --accounts "$ACCOUNTS_TABLE" --profiles "$PROFILES_TABLE" \
    --security "$SECURITY_TABLE")
}

# apt_install PACKAGE: Debian's package, when its command is missing (as root or with sudo).
apt_install() {
  local package="$1" log="$TOOLS_DIR/apt-$1.log" sudo=()
  command -v "$package" >/dev/null && return 0
  mkdir -p "$TOOLS_DIR" || return 1
  ((EUID == 0)) || sudo=(sudo)
  _tools_log "installing Debian's $package (log: $log)"
  if ! { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "$package" \
        || { "${sudo[@]}" apt-get update && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "$package"; }
      } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    _tools_log "apt-get install $package failed (see $log)"
    return 1
  fi
}

# Debian's chromium (apt-get, once) and the pinned playwright-core of scripts/steps/browser
# (npm ci into .tools/node); exports CHROMIUM and BROWSER_NODE_MODULES for
# scripts/steps/browser/test.mjs.
browser_tools() {
  mkdir -p "$TOOLS_DIR" || return 1
  export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
  [[ -x "$CHROMIUM" ]] || apt_install chromium || return 1
  local src="$TOOLS_LIB_DIR/steps/browser" node_dir="$TOOLS_DIR/node" want
  want="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)" || return 1
  if [[ -f "$node_dir/.tools-stamp" && "$(cat "$node_dir/.tools-stamp")" == "$want" \
        && -d "$node_dir/node_modules/playwright-core" ]]; then
    _tools_log "playwright-core up to date ($node_dir)"
  else
    local npm_log="$TOOLS_DIR/npm-install.log"
    _tools_log "installing playwright-core from scripts/steps/browser/package-lock.json (log: $npm_log)"
    mkdir -p "$node_dir" && cp "$src/package.json" "$src/package-lock.json" "$node_dir/" || return 1
    if ! (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund) >"$npm_log" 2>&1; then
      tail -n 20 "$npm_log" >&2
      _tools_log "npm ci failed (see $npm_log)"
      return 1
    fi
    echo "$want" >"$node_dir/.tools-stamp"
  fi
  export BROWSER_NODE_MODULES="$node_dir/node_modules"
}
