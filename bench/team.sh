#!/usr/bin/env bash
# The team-store benchmarks (issue 16): agentrace on PostgreSQL with a large store.
#
#   bash bench/team.sh                 # starts its own PostgreSQL (ci/postgres.sh), 1,000,000 traces
#   TEAM_TRACES=100000 bash bench/team.sh
#   AGENTRACE_PG_URL=postgres://... bash bench/team.sh   # a server you started (a database
#                                                        # agentrace_bench is created and dropped)
#
# T1 `list --group X --limit 20` and T2 `show ID` on a store of TEAM_TRACES traces (one span each,
# every 1000th trace in group `bench-group`), T3 `list --limit 20`. The store is filled by SQL
# (generate_series) after agentrace created its tables, which is what 1,000,000 runs would leave;
# timings are medians of whole processes (connect, schema check, query, render), like bench/run.sh.
# Prints a table and writes bench/team-results.md. The server runs with the default settings
# (fsync on): a figure to report, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin agentrace --example bench_fill
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET/release/agentrace
FILL=$TARGET/release/examples/bench_fill
WORK=$(mktemp -d)
N=${TEAM_TRACES:-1000000}
OWN_PG=
cleanup() {
  if [ -n "$OWN_PG" ]; then PG_STATE_DIR=$WORK/pg bash ci/postgres.sh stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${AGENTRACE_PG_URL:-}" ]; then
  bash ci/postgres.sh install >&2
  env_lines=$(PG_DURABLE=1 PG_STATE_DIR=$WORK/pg bash ci/postgres.sh start)
  eval "$env_lines"
  OWN_PG=1
  if ((EUID == 0)); then chown -R postgres "$WORK/pg" 2>/dev/null || true; fi
fi
BASE=$AGENTRACE_PG_URL
DB_URL=${BASE%/*}/agentrace_bench
psql "$BASE" -qc "DROP DATABASE IF EXISTS agentrace_bench" -c "CREATE DATABASE agentrace_bench"
"$FILL" "$DB_URL" traces 1 # agentrace creates its tables

fill_t0=$SECONDS
psql "$DB_URL" -q <<SQL
INSERT INTO traces (trace_id, name, workflow, group_id, metadata, status, started_at, ended_at,
                    pid, search)
SELECT 'trace_' || lpad(to_hex(g), 32, '0'), 'bench ' || (g % 7), 'bench ' || (g % 7),
       CASE WHEN g % 1000 = 0 THEN 'bench-group' END, '{}', 'ok',
       1700000000000000 + g * 1000, 1700000000000000 + g * 1000 + 500, 4242,
       array_to_tsvector(ARRAY['bench', (g % 7)::text])
FROM generate_series(1, $N) AS g;
INSERT INTO spans (trace_id, span_id, parent_id, kind, name, status, started_at, ended_at,
                   attributes, search)
SELECT 'trace_' || lpad(to_hex(g), 32, '0'), 'span_' || lpad(to_hex(g), 16, '0'), NULL,
       'custom', 'step', 'ok', 1700000000000000 + g * 1000 + 10,
       1700000000000000 + g * 1000 + 490, '{"index": ' || g || '}',
       array_to_tsvector(ARRAY['step'])
FROM generate_series(1, $N) AS g;
ANALYZE;
SQL
fill_s=$((SECONDS - fill_t0))
NEWEST=trace_$(printf '%032x' "$N")

median_ms() { # RUNS CMD... -> the median wall time in ms
  local runs=$1; shift
  python3 - "$runs" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
walls = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    walls.append((time.perf_counter() - t) * 1000)
print(f"{statistics.median(walls):.1f}")
PY
}
export AGENTRACE_STORE=$DB_URL NO_COLOR=1
t1=$(median_ms 11 "$BIN" list --group bench-group --limit 20)
t2=$(median_ms 11 "$BIN" show "$NEWEST")
t3=$(median_ms 11 "$BIN" list --limit 20)
t4=$(median_ms 11 "$BIN" --version)
rows=$("$BIN" list --group bench-group --limit 2000 --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
size=$(psql "$DB_URL" -Atc "SELECT pg_size_pretty(pg_database_size(current_database()))")
psql "$BASE" -qc "DROP DATABASE IF EXISTS agentrace_bench"

{
  echo "| | what | measured | target |"
  echo "|---|---|---|---|"
  echo "| T1 | \`list --group bench-group --limit 20\`, $N traces ($rows in the group) | $t1 ms | < 50 ms |"
  echo "| T2 | \`show ID\`, $N traces | $t2 ms | - |"
  echo "| T3 | \`list --limit 20\`, $N traces | $t3 ms | - |"
  echo "| T4 | \`--version\` (process start, for scale) | $t4 ms | - |"
  echo
  echo "PostgreSQL $(psql "$BASE" -Atc 'SHOW server_version'), database $size after the fill ($fill_s s by SQL); $(nproc) cores; medians of 11 runs of the release binary."
} | tee bench/team-results.md
