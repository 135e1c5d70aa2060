#!/usr/bin/env bash
# A real server with OpenAI's Responses API (`POST /v1/responses`) for the `real_responses_*`
# tests in tests/e2e/real_server.rs: the LiteLLM proxy (PyPI), whose Responses API turns each
# call into a Chat Completions call to the llama.cpp server of ci/llama-server.sh. Neither
# llama-cpp-python's server nor any other model server installable from the registries here
# answers /v1/responses itself (llama-cpp-python says 404); LiteLLM's is the Responses API as a
# widely used gateway implements it: its own request validation, response objects and stream
# events, not ours.
#
#   ci/litellm.sh install   # venv in a cache dir that later runs reuse (~10 s with uv, then ~1 s)
#   ci/litellm.sh start     # needs AGENTRACE_LLAMA_URL; prints `export ...` lines on stdout
#   ci/litellm.sh stop      # kills the proxy by its recorded PID
#   ci/litellm.sh status
#
#   eval "$(ci/litellm.sh start)"   # sets AGENTRACE_RESPONSES_URL (http://127.0.0.1:PORT/v1)
#                                   # and AGENTRACE_RESPONSES_KEY (this proxy's throwaway key)
#
# Environment:
#   AGENTRACE_CI_CACHE      cache dir (default ~/.cache/agentrace-ci): litellm/venv
#   AGENTRACE_LLAMA_URL     the upstream Chat Completions server (…/v1), serving `smollm2`
#   LITELLM_STATE_DIR       PID file, log, env file and config (default: litellm/run in the cache)
#   LITELLM_START_TIMEOUT   seconds to wait for the proxy (default 90)
#
# The proxy refuses to start without a master key (every request would be accepted): `start`
# makes a random one per start, which the tests send as their API key. The model price map is
# the packaged one (LITELLM_LOCAL_MODEL_COST_MAP), as there is no network to fetch it from.
set -euo pipefail

LITELLM_VERSION=1.108.7
UV_VERSION=0.13.9

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
ROOT=$CACHE/litellm
VENV=$ROOT/venv
UV_VENV=$ROOT/uv-venv
STAMP=$VENV/.agentrace-installed
STAMP_TEXT="litellm[proxy]==$LITELLM_VERSION"
STATE=${LITELLM_STATE_DIR:-$ROOT/run}
PID_FILE=$STATE/litellm.pid
LOG_FILE=$STATE/litellm.log
ENV_FILE=$STATE/litellm.env
CONFIG=$STATE/config.yaml

SERVER_NAME=litellm
SERVER_MATCH=litellm
# shellcheck source=ci/server-lib.sh
source "$(dirname "$0")/server-lib.sh"

installed() {
  [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_TEXT" ]] && [[ -x $VENV/bin/litellm ]]
}

cmd_install() {
  command -v python3 >/dev/null || die "python3 is not installed"
  mkdir -p "$ROOT"
  exec 9>"$ROOT/.install.lock"
  flock 9
  if installed; then
    say "already installed in $VENV ($STAMP_TEXT)"
    return 0
  fi
  local started=$SECONDS
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  local uv
  uv=$(uv_bin "$UV_VENV" "$UV_VERSION") || die "could not install uv"
  say "installing $STAMP_TEXT with uv"
  UV_CACHE_DIR=$ROOT/uv-cache "$uv" pip install --quiet --python "$VENV/bin/python" \
    --compile-bytecode "$STAMP_TEXT" || die "uv pip install litellm failed"
  printf '%s' "$STAMP_TEXT" >"$STAMP"
  say "installed in $((SECONDS - started)) s: $VENV"
}

live() {
  curl -fsS --max-time 2 "$1/health/liveliness" >/dev/null 2>&1
}

cmd_start() {
  installed || die "not installed in $VENV: run \`$0 install\` first"
  command -v curl >/dev/null || die "curl is needed to wait for the server"
  [[ -n ${AGENTRACE_LLAMA_URL:-} ]] || die "AGENTRACE_LLAMA_URL is not set: start ci/llama-server.sh first"
  mkdir -p "$STATE"
  local port url pid key
  if pid=$(running_pid); then
    die "a proxy already runs from $STATE (pid $pid); run \`$0 stop\` first or set LITELLM_STATE_DIR"
  fi
  port=$(free_port)
  url="http://127.0.0.1:$port"
  key="sk-agentrace-test-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  # `custom_openai/`: a plain OpenAI-compatible upstream, so LiteLLM serves the Responses API by
  # translating to Chat Completions (for providers it believes speak /responses themselves,
  # such as `hosted_vllm/`, it would forward the call and get llama-cpp-python's 404).
  cat >"$CONFIG" <<CONFIG
model_list:
  - model_name: smollm2
    litellm_params:
      model: custom_openai/smollm2
      api_base: $AGENTRACE_LLAMA_URL
      api_key: none
litellm_settings:
  num_retries: 0
CONFIG
  local started=$SECONDS
  (cd "$STATE" && exec env LITELLM_MASTER_KEY="$key" LITELLM_LOCAL_MODEL_COST_MAP=True \
    LITELLM_TELEMETRY=False "$VENV/bin/litellm" --config "$CONFIG" --host 127.0.0.1 \
    --port "$port" --num_workers 1 </dev/null >"$LOG_FILE" 2>&1) &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  wait_ready "$pid" "${LITELLM_START_TIMEOUT:-90}" "$url/health/liveliness (LITELLM_START_TIMEOUT)" live "$url"
  say "LiteLLM $LITELLM_VERSION at $url/v1 (Responses API over $AGENTRACE_LLAMA_URL; pid $pid, ready in $((SECONDS - started)) s, log $LOG_FILE)"
  {
    printf 'export AGENTRACE_RESPONSES_URL=%q\n' "$url/v1"
    printf 'export AGENTRACE_RESPONSES_KEY=%q\n' "$key"
    printf 'export LITELLM_SERVER_PID=%q\n' "$pid"
  } | tee "$ENV_FILE"
}

dispatch "$@"
