#!/usr/bin/env bash
# The real Python clients for the `real_python_*` tests of `agentrace serve` (tests/e2e/serve.rs):
# the OpenAI Agents SDK and the OpenTelemetry SDK with its OTLP/HTTP exporter, in a venv cached
# outside the clone (AGENTRACE_CI_CACHE, default ~/.cache/agentrace-ci). Prints
# `AGENTRACE_PYTHON=<venv python>` for `eval`.
#
#   bash ci/python-clients.sh install   # about 20 s the first time, instant later
#   eval "$(bash ci/python-clients.sh env)"
set -euo pipefail

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
VENV=$CACHE/pyclients
PACKAGES=(openai-agents==0.24.0 opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2)

installed() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import agents, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http' 2>/dev/null &&
    [ "$(cat "$VENV/.packages" 2>/dev/null)" = "${PACKAGES[*]}" ]
}

case "${1:-}" in
  install)
    if installed; then
      echo "python clients: cached in $VENV" >&2
      exit 0
    fi
    rm -rf "$VENV"
    mkdir -p "$CACHE"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" >&2
    echo "${PACKAGES[*]}" >"$VENV/.packages"
    echo "python clients: installed ${PACKAGES[*]} in $VENV" >&2
    ;;
  env)
    installed || { echo "python clients are not installed: bash ci/python-clients.sh install" >&2; exit 1; }
    echo "AGENTRACE_PYTHON=$VENV/bin/python"
    ;;
  *)
    echo "usage: ci/python-clients.sh install|env" >&2
    exit 2
    ;;
esac
