#!/usr/bin/env bash
# Arize Phoenix, a real OTLP receiver with an LLM-tracing UI, for agentrace's OTLP export tests
# (`real_phoenix_*` in tests/e2e/otlp.rs).
#
#   ci/phoenix.sh install   # venv in a cache dir that later runs reuse (~20 s with uv, then ~1 s)
#   ci/phoenix.sh start     # background server on 127.0.0.1; prints `export ...` lines on stdout
#   ci/phoenix.sh stop      # kills the server by its recorded PID
#   ci/phoenix.sh status    # says whether it runs, and where
#
#   eval "$(ci/phoenix.sh start)"   # sets AGENTRACE_PHOENIX_URL (http://127.0.0.1:PORT)
#
# Environment:
#   AGENTRACE_CI_CACHE     cache dir (default ~/.cache/agentrace-ci): phoenix/venv, phoenix/uv
#   PHOENIX_STATE_DIR      where the PID file, log, env file and Phoenix's working dir (its
#                          SQLite database) go (default: a new temporary directory per start,
#                          recorded in $AGENTRACE_CI_CACHE/phoenix/run); give each concurrent
#                          server its own
#   PHOENIX_HTTP_PORT      HTTP port (default: a free one, chosen here)
#   PHOENIX_START_TIMEOUT  seconds to wait for /healthz (default 90)
#
# Why uv: pip needs about 66 s for Phoenix's 145 packages; uv about 20 s cold and seconds warm.
# uv itself comes from PyPI into a small venv of its own. `--compile-bytecode` because this
# environment sets PYTHONDONTWRITEBYTECODE=1, and without .pyc files Phoenix starts in about 18 s
# instead of 11 s.
#
# Only stdout of `start` is meant for `eval`; everything else this script says goes to stderr.
set -euo pipefail

PHOENIX_VERSION=20.26.1
UV_VERSION=0.13.9

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
ROOT=$CACHE/phoenix
VENV=$ROOT/venv
UV_VENV=$ROOT/uv-venv
STAMP=$VENV/.agentrace-installed
STAMP_TEXT="arize-phoenix==$PHOENIX_VERSION"
STATE=${PHOENIX_STATE_DIR:-$ROOT/run}
PID_FILE=$STATE/phoenix.pid
LOG_FILE=$STATE/phoenix.log
ENV_FILE=$STATE/phoenix.env
DATA_DIR_FILE=$STATE/phoenix.data

SERVER_NAME=phoenix
SERVER_MATCH=phoenix
# shellcheck source=ci/server-lib.sh
source "$(dirname "$0")/server-lib.sh"

# Cheap on purpose: `import phoenix` itself takes about 10 s.
installed() {
  [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_TEXT" ]] && [[ -x $VENV/bin/phoenix ]] &&
    [[ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("arize-phoenix"))' 2>/dev/null)" == "$PHOENIX_VERSION" ]]
}

cmd_install() {
  command -v python3 >/dev/null || die "python3 is not installed"
  mkdir -p "$ROOT"
  # Two CI runs on one machine must not install into the same venv at once.
  exec 9>"$ROOT/.install.lock"
  flock 9
  if installed; then
    say "already installed in $VENV ($STAMP_TEXT)"
    return 0
  fi
  local started=$SECONDS
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  rm -f "$STAMP"
  if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    say "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  local uv
  uv=$(uv_bin "$UV_VENV" "$UV_VERSION") || {
    say "could not install uv; falling back to pip (about a minute)"
    uv=""
  }
  if [[ -n $uv ]]; then
    say "installing arize-phoenix $PHOENIX_VERSION with uv"
    UV_CACHE_DIR=$ROOT/uv-cache "$uv" pip install --quiet --python "$VENV/bin/python" \
      --compile-bytecode "arize-phoenix==$PHOENIX_VERSION" ||
      die "uv pip install arize-phoenix failed"
  else
    say "installing arize-phoenix $PHOENIX_VERSION with pip"
    "$VENV/bin/python" -m pip --quiet install "arize-phoenix==$PHOENIX_VERSION" ||
      die "pip install arize-phoenix failed"
  fi
  "$VENV/bin/python" -c 'import phoenix.server' || die "phoenix does not import after install"
  printf '%s' "$STAMP_TEXT" >"$STAMP"
  say "installed in $((SECONDS - started)) s: $VENV"
}

healthy() {
  curl -fsS --max-time 2 "$1/healthz" >/dev/null 2>&1
}

cmd_start() {
  installed || die "not installed in $VENV: run \`$0 install\` first"
  command -v curl >/dev/null || die "curl is needed to wait for the server"
  mkdir -p "$STATE"
  local port grpc_port url pid data
  if pid=$(running_pid); then
    die "a server already runs from $STATE (pid $pid); run \`$0 stop\` first or set PHOENIX_STATE_DIR"
  fi
  port=${PHOENIX_HTTP_PORT:-$(free_port)}
  # Phoenix always binds its gRPC listener on [::] (hard-coded); a free port keeps two servers
  # (or another OTLP receiver on 4317) from clashing.
  grpc_port=$(free_port)
  url="http://127.0.0.1:$port"
  # A fresh database per start: tests query by trace id, and nothing from an earlier run leaks.
  data=$(mktemp -d "${TMPDIR:-/tmp}/agentrace-phoenix-data.XXXXXX")
  printf '%s\n' "$data" >"$DATA_DIR_FILE"
  local started=$SECONDS
  # stdin closed and output to the log, so the server holds no pipe of the caller open.
  env PHOENIX_HOST=127.0.0.1 PHOENIX_PORT="$port" PHOENIX_GRPC_PORT="$grpc_port" \
    PHOENIX_WORKING_DIR="$data" PHOENIX_TELEMETRY_ENABLED=false \
    PHOENIX_ALLOW_EXTERNAL_RESOURCES=false PHOENIX_DB_LOGGING_LEVEL=warning \
    PHOENIX_LOG_MIGRATIONS=false \
    "$VENV/bin/phoenix" serve </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  wait_ready "$pid" "${PHOENIX_START_TIMEOUT:-90}" "$url/healthz (PHOENIX_START_TIMEOUT)" healthy "$url"
  say "Phoenix $PHOENIX_VERSION at $url (OTLP/HTTP $url/v1/traces; pid $pid, ready in $((SECONDS - started)) s, log $LOG_FILE)"
  {
    printf 'export AGENTRACE_PHOENIX_URL=%q\n' "$url"
    printf 'export PHOENIX_SERVER_PID=%q\n' "$pid"
  } | tee "$ENV_FILE"
}

# The database of the stopped server goes with it.
after_stop() {
  if [[ -f $DATA_DIR_FILE ]]; then
    local data
    data=$(cat "$DATA_DIR_FILE")
    [[ $data == */agentrace-phoenix-data.* ]] && rm -rf "$data"
  fi
  rm -f "$DATA_DIR_FILE"
}

dispatch "$@"
