#!/usr/bin/env bash
# Real MCP servers for the `real_mcp_*` tests (tests/e2e/mcp.rs), cached outside the clone
# (AGENTRACE_CI_CACHE, default ~/.cache/agentrace-ci): `mcp-server-time` (PyPI, stdio) in a venv
# and `@modelcontextprotocol/server-everything` (npm, stdio and streamable HTTP). Prints the
# variables the tests read, for `eval`.
#
#   bash ci/mcp-servers.sh install   # about 20 s the first time, instant later
#   eval "$(bash ci/mcp-servers.sh env)"
set -euo pipefail

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
DIR=$CACHE/mcp-servers
PY_PACKAGES=(mcp-server-time==2026.10.19 mcp==2.3.0)
NPM_PACKAGE=@modelcontextprotocol/server-everything@2026.8.31
STAMP="${PY_PACKAGES[*]} $NPM_PACKAGE"
EVERYTHING=$DIR/node_modules/@modelcontextprotocol/server-everything/dist/index.js

installed() {
  [ -x "$DIR/venv/bin/mcp-server-time" ] && [ -f "$EVERYTHING" ] &&
    [ "$(cat "$DIR/.packages" 2>/dev/null)" = "$STAMP" ]
}

case "${1:-}" in
  install)
    if installed; then
      echo "mcp servers: cached in $DIR" >&2
      exit 0
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    python3 -m venv "$DIR/venv"
    "$DIR/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
    (cd "$DIR" && npm install --silent --no-audit --no-fund "$NPM_PACKAGE" >&2)
    echo "$STAMP" >"$DIR/.packages"
    echo "mcp servers: installed $STAMP in $DIR" >&2
    ;;
  env)
    installed || { echo "mcp servers are not installed: bash ci/mcp-servers.sh install" >&2; exit 1; }
    echo "AGENTRACE_MCP_TIME=$DIR/venv/bin/mcp-server-time"
    echo "AGENTRACE_MCP_EVERYTHING=$EVERYTHING"
    ;;
  *)
    echo "usage: ci/mcp-servers.sh install|env" >&2
    exit 2
    ;;
esac
