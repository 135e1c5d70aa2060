#!/usr/bin/env bash
# playwright-core from npm for the UI test of `agentrace serve` (tests/e2e/serve.rs drives
# Debian's chromium with tests/ui/drive.mjs), and typescript for `tsc --noEmit -p src/serve/ui`
# (.ci/run). Installed from tests/ui/package.json (+ lock) into
# a cache outside the clone (AGENTRACE_CI_CACHE, default ~/.cache/agentrace-ci); no browser is
# downloaded (playwright-core never does). Prints `AGENTRACE_NODE_PATH=<node_modules>` for `eval`.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
DIR=$CACHE/ui
mkdir -p "$DIR"
if ! cmp -s tests/ui/package.json "$DIR/package.json" || [ ! -d "$DIR/node_modules/playwright-core" ] ||
  [ ! -x "$DIR/node_modules/.bin/tsc" ]; then
  cp tests/ui/package.json "$DIR/"
  if [ -f tests/ui/package-lock.json ]; then
    cp tests/ui/package-lock.json "$DIR/"
    (cd "$DIR" && npm ci --no-audit --no-fund --silent) >&2
  else
    (cd "$DIR" && npm install --no-audit --no-fund --silent) >&2
  fi
  echo "playwright-core: installed in $DIR" >&2
else
  echo "playwright-core: cached in $DIR" >&2
fi
echo "AGENTRACE_NODE_PATH=$DIR/node_modules"
