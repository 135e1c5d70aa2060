#!/usr/bin/env bash
# Makes a Chromium available for the headless HTML export tests in tests/e2e/files.rs: Debian's
# `chromium` from apt, unless a Chromium is already on PATH. Those tests fail under CI=true when
# no browser is found, and skip with a note elsewhere.
set -euo pipefail

for browser in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$browser" >/dev/null 2>&1; then
    echo "chromium: $(command -v "$browser"): $("$browser" --version 2>/dev/null || echo 'version unknown')"
    exit 0
  fi
done

sudo=()
if [ "$(id -u)" != 0 ]; then
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq chromium >/dev/null
echo "chromium: $(command -v chromium): $(chromium --version 2>/dev/null || echo 'version unknown')"
