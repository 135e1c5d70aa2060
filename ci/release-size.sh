#!/usr/bin/env bash
# The binary users install (issue 17, point 19): `cargo build --release` must carry no debug
# info (line tables once made it 128 MB) and stay under a size budget. Prints the size; exits 1
# past the budget or when a .debug_* section is present. `cargo build --profile profiling` is
# the build with line tables, for perf and callgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
budget_mib=${RELEASE_BUDGET_MIB:-40}
cargo build --release --quiet --bin agentrace
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target/release/agentrace
bytes=$(stat -c %s "$bin")
mib=$((bytes / 1048576))
debug_sections=$(readelf -S --wide "$bin" | grep -c '\.debug_' || true)
printf 'release binary: %s bytes (%s MiB; budget %s MiB), %s debug sections\n' "$bytes" "$mib" "$budget_mib" "$debug_sections"
if ((debug_sections > 0)); then
  echo "the release binary carries debug info: keep [profile.release] strip = \"debuginfo\"" >&2
  exit 1
fi
if ((mib >= budget_mib)); then
  echo "the release binary is over its ${budget_mib} MiB budget" >&2
  exit 1
fi
