#!/usr/bin/env bash
# The benchmark suite (issue 7): builds in release mode, starts the Rust fake OpenAI-compatible
# server from examples/bench_server.rs, and measures agentrace end to end. Prints a table and
# writes bench/results.json and bench/results.md.
#
#   bash bench/run.sh            # everything
#   QUICK=1 bash bench/run.sh    # smaller sizes, for a smoke test of the harness
#   ONLY=ingest bash bench/run.sh  # only I1 (ingest through serve); table to stdout, files kept
#   ONLY=fanout bash bench/run.sh  # only the fan-outs (B2, B2w, pinned and not) and C1 (callgrind)
#   INGEST_STORE=postgres://… ONLY=ingest bash bench/run.sh  # I1 on that store instead of SQLite
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin agentrace --example bench_server --example bench_fill \
  --example bench_floor --example bench_ingest
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET/release/agentrace
SERVER=$TARGET/release/examples/bench_server
FILL=$TARGET/release/examples/bench_fill
FLOOR=$TARGET/release/examples/bench_floor
INGEST=$TARGET/release/examples/bench_ingest
WORK=$(mktemp -d)
# start_server runs in a command substitution (a subshell), so pids go to a file, not a variable.
PIDS=$WORK/server.pids
cleanup() {
  if [ -f "$PIDS" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$PIDS"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${QUICK:-}" ]; then STEPS=100; PAR=50; WIDE=400; SPANS=10000; TRACES=10000; else
  STEPS=1000; PAR=200; WIDE=2000; SPANS=100000; TRACES=100000; fi
# The cores this process may use (its affinity, which taskset or a container may narrow), and
# the taskset lists for "one core" and "all of them".
CORES=$(nproc)
ALL_CPUS=$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')
ONE_CPU=${ALL_CPUS%%,*}

# start_server LATENCY_MS -> prints the base URL
start_server() {
  local out=$WORK/server-$1.out
  "$SERVER" --port 0 --latency-ms "$1" >"$out" 2>&1 &
  echo $! >>"$PIDS"
  for _ in $(seq 1 100); do
    if grep -q listening "$out"; then sed -n 's/^listening on //p' "$out"; return; fi
    sleep 0.05
  done
  echo "bench server did not start" >&2; exit 1
}

# A workflow of N sequential agent steps, or N agent steps in one parallel step.
gen_workflow() {
  local file=$1 n=$2 mode=$3
  {
    echo "name: bench $mode $n"
    echo "model: gpt-4o-mini"
    echo "agents: { a: { instructions: Answer briefly. } }"
    echo "steps:"
    if [ "$mode" = parallel ]; then
      echo "  - name: fan-out"
      echo "    parallel:"
      for i in $(seq 1 "$n"); do echo "      - { agent: a, input: \"question $i\" }"; done
    else
      for i in $(seq 1 "$n"); do echo "  - { agent: a, input: \"question $i\" }"; done
    fi
  } >"$file"
}

# measure NAME RUNS -- CMD... [--and NAME -- CMD...]: median wall ms and peak RSS (MiB) of each
# CMD over RUNS runs, one JSON line each. Several commands run in turn, run after run, so that a
# comparison between them is not skewed by the machine getting busier or quieter meanwhile.
measure() {
  local runs=$2
  python3 - "$runs" "$@" <<'PY'
import json, os, statistics, subprocess, sys
import time
runs, args = int(sys.argv[1]), sys.argv[2:]
groups, cur = [], []
for a in args + ["--and"]:
    if a == "--and":
        # NAME RUNS -- CMD... for the first, NAME -- CMD... for the others
        name, rest = cur[0], cur[1:]
        rest = rest[rest.index("--") + 1:]
        groups.append((name, rest))
        cur = []
    else:
        cur.append(a)
walls = {name: [] for name, _ in groups}
rss = {name: 0.0 for name, _ in groups}
for _ in range(runs):
    for name, cmd in groups:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        walls[name].append((time.perf_counter() - t) * 1000)
        if status != 0:
            print(f"{name}: command failed ({status}): {' '.join(cmd)}", file=sys.stderr)
            sys.exit(1)
        rss[name] = max(rss[name], usage.ru_maxrss / 1024)
for name, _ in groups:
    print(json.dumps({"name": name, "wall_ms": round(statistics.median(walls[name]), 2), "rss_mib": round(rss[name], 1), "runs": runs}))
PY
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
export AGENTRACE_STORE=$WORK/bench.db NO_COLOR=1 OPENAI_API_KEY=sk-bench

# I1: ingest through serve (issue 16). CLIENTS concurrent pushers post INGEST_BODIES bodies each,
# every body one trace of 100 spans as gzipped OTLP protobuf (examples/bench_ingest.rs), to a
# serve of its own on a fresh SQLite store (or on INGEST_STORE, a postgres:// URL): spans/s until
# the last span is queryable through the API, request latency, errors, and serve's peak RSS.
if [ -n "${QUICK:-}" ]; then INGEST_BODIES=20; else INGEST_BODIES=100; fi
# ingest_row NAME CLIENTS: one JSON line with bench_ingest's figures and serve's VmHWM.
ingest_row() {
  local name=$1 clients=$2 store=${INGEST_STORE:-$WORK/$1.db} pid addr line hwm
  AGENTRACE_STORE=$store "$BIN" -q serve --addr 127.0.0.1:0 2>"$WORK/$name.err" &
  pid=$!
  echo "$pid" >>"$PIDS"
  for _ in $(seq 1 200); do grep -q listening "$WORK/$name.err" && break; sleep 0.05; done
  addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/$name.err")
  line=$("$INGEST" "http://$addr" --clients "$clients" --bodies "$INGEST_BODIES")
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 -c 'import json, sys; j = json.loads(sys.argv[3]); j.update(name=sys.argv[1], rss_mib=round(int(sys.argv[2]) / 1024, 1)); print(json.dumps(j))' \
    "$name" "$hwm" "$line"
}
INGEST_KIND=SQLite
case "${INGEST_STORE:-}" in postgres://* | postgresql://*) INGEST_KIND=PostgreSQL ;; esac
if [ "${ONLY:-}" != fanout ]; then
  ingest_row i1_ingest_1 1 >>"$RESULTS"
  ingest_row i1_ingest_16 16 >>"$RESULTS"
fi

# The fan-outs (issue 19), unless only I1 was asked for: start-up, B2 (PAR branches) and B2w
# (WIDE branches) at 100 ms, each by turns with its floor, on all the cores this process may
# use and pinned to one (taskset), so that how the run scales shows on any machine; and C1,
# callgrind's instruction count per branch of a WIDE fan-out at 0 ms, which does not depend on
# the machine's load (the difference between a WIDE and a PAR fan-out, over WIDE - PAR).
if [ "${ONLY:-}" != ingest ]; then
URL0=$(start_server 0)
URL100=$(start_server 100)
gen_workflow "$WORK/b1-1.yaml" 1 seq
gen_workflow "$WORK/b2.yaml" "$PAR" parallel
gen_workflow "$WORK/b2w.yaml" "$WIDE" parallel
OPENAI_BASE_URL=$URL0 measure b1_one_step 7 -- "$BIN" -q run "$WORK/b1-1.yaml" --format none >>"$RESULTS"
# With the floor, run by turns: the same calls made by the HTTP stack alone (async-openai over
# reqwest, one thread), no workflow, spans or store. B2 minus the floor is what agentrace adds.
for pin in all one; do
  if [ "$pin" = all ]; then cpus=$ALL_CPUS; sfx=""; else cpus=$ONE_CPU; sfx=_1cpu; fi
  OPENAI_BASE_URL=$URL100 measure "b2_parallel$sfx" 11 -- taskset -c "$cpus" "$BIN" -q run \
    "$WORK/b2.yaml" --format none --and "b2_floor$sfx" -- taskset -c "$cpus" "$FLOOR" "$URL100" \
    "$PAR" >>"$RESULTS"
  OPENAI_BASE_URL=$URL100 measure "b2w_parallel$sfx" 11 -- taskset -c "$cpus" "$BIN" -q run \
    "$WORK/b2w.yaml" --format none --and "b2w_floor$sfx" -- taskset -c "$cpus" "$FLOOR" \
    "$URL100" "$WIDE" >>"$RESULTS"
done
# The same fan-out with answers at once: its own cost, which the 100 ms calls overlap or not.
OPENAI_BASE_URL=$URL0 measure b2_parallel_0ms 11 -- "$BIN" -q run "$WORK/b2.yaml" --format none >>"$RESULTS"
if command -v valgrind >/dev/null; then
  for n in "$PAR" "$WIDE"; do
    AGENTRACE_STORE=$WORK/cg-$n.db OPENAI_BASE_URL=$URL0 valgrind --tool=callgrind \
      --callgrind-out-file="$WORK/cg-$n.out" "$BIN" -q run "$WORK/b2$([ "$n" = "$WIDE" ] && echo w).yaml" \
      --format none >/dev/null 2>"$WORK/cg-$n.err" || { cat "$WORK/cg-$n.err" >&2; exit 1; }
  done
  python3 - "$WORK/cg-$PAR.out" "$WORK/cg-$WIDE.out" "$PAR" "$WIDE" >>"$RESULTS" <<'PY'
import json, sys
def total(path):
    for line in open(path):
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise SystemExit(f"no total in {path}")
small, wide = total(sys.argv[1]), total(sys.argv[2])
n_small, n_wide = int(sys.argv[3]), int(sys.argv[4])
print(json.dumps({"name": "c1_callgrind", "ir_small": small, "ir_wide": wide, "n_small": n_small, "n_wide": n_wide, "ir_per_branch": round((wide - small) / (n_wide - n_small))}))
PY
else
  echo "C1 skipped: valgrind is not installed (apt-get install valgrind)" >&2
fi
fi

# Everything else, unless only I1 or the fan-outs were asked for.
if [ -z "${ONLY:-}" ]; then

gen_workflow "$WORK/b1.yaml" "$STEPS" seq
OPENAI_BASE_URL=$URL0 measure b1_sequential 5 -- "$BIN" -q run "$WORK/b1.yaml" --format none >>"$RESULTS"

SPANS_DB=$WORK/spans.db
"$FILL" "$SPANS_DB" spans "$SPANS"
AGENTRACE_STORE=$SPANS_DB measure b3_show_json 3 -- "$BIN" show last --format json >>"$RESULTS"
AGENTRACE_STORE=$SPANS_DB measure b3_show_tree 3 -- "$BIN" show last >>"$RESULTS"
TRACES_DB=$WORK/traces.db
"$FILL" "$TRACES_DB" traces "$TRACES"
AGENTRACE_STORE=$TRACES_DB measure b3_list_group 10 -- "$BIN" list --group bench-group --limit 20 >>"$RESULTS"
AGENTRACE_STORE=$TRACES_DB measure b3_list 10 -- "$BIN" list >>"$RESULTS"

# B5: agentrace serve. A trace of SERVE_SPANS spans exported as OTLP/JSON, posted to serve's
# /v1/traces, then read back through the JSON API (each a fresh store per ingest run).
if [ -n "${QUICK:-}" ]; then SERVE_SPANS=1000; else SERVE_SPANS=10000; fi
SERVE_SRC=$WORK/serve-src.db
"$FILL" "$SERVE_SRC" spans "$SERVE_SPANS"
AGENTRACE_STORE=$SERVE_SRC "$BIN" export last --format otlp-json -o "$WORK/serve.json"
SERVE_DB=$WORK/serve.db
AGENTRACE_STORE=$SERVE_DB "$BIN" -q serve --addr 127.0.0.1:0 2>"$WORK/serve.err" &
echo $! >>"$PIDS"
for _ in $(seq 1 100); do grep -q listening "$WORK/serve.err" && break; sleep 0.05; done
SERVE=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$WORK/serve.err")
measure b5_ingest 3 -- curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
  --data-binary "@$WORK/serve.json" "http://$SERVE/v1/traces" >>"$RESULTS"
SERVE_ID=$(AGENTRACE_STORE=$SERVE_DB "$BIN" list --format json --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["trace_id"])')
measure b5_api_trace 5 -- curl -sf -o /dev/null "http://$SERVE/api/traces/$SERVE_ID" >>"$RESULTS"

# B6: the B1 run recording through that serve (AGENTRACE_REMOTE), by turns with the same run into
# the local store: what pushing costs a run, until its last batch is stored on the server.
OPENAI_BASE_URL=$URL0 measure b6_local 5 -- "$BIN" -q run "$WORK/b1.yaml" --format none \
  --and b6_push -- env AGENTRACE_REMOTE="http://$SERVE" AGENTRACE_SPOOL="$WORK/spool.jsonl" \
  "$BIN" -q run "$WORK/b1.yaml" --format none >>"$RESULTS"
if [ -e "$WORK/spool.jsonl" ]; then echo "B6: the pushing runs spooled (serve unreachable?)" >&2; exit 1; fi

# E1: an evaluation of EVAL_CASES cases (one agent step and one built-in check each) against the
# fake server at 100 ms, 50 cases at once. Ideal: EVAL_CASES / 50 × 100 ms. Beside it, by turns,
# promptfoo on the same cases against the same server (bench/promptfoo.sh installs it into a
# cache; PEERS=0 leaves it out).
if [ -n "${QUICK:-}" ]; then EVAL_CASES=200; else EVAL_CASES=1000; fi
{
  echo "name: bench eval"
  echo "model: gpt-4o-mini"
  echo "agents: { a: { instructions: Answer briefly. } }"
  echo "vars: { question: \"\" }"
  echo "steps:"
  echo "  - id: answer"
  echo "    agent: a"
  echo "    input: \"{{ vars.question }}\""
  echo "    scores:"
  echo "      - { name: mentions, contains: \"{{ case.expected }}\" }"
} >"$WORK/e1.yaml"
python3 - "$WORK" "$EVAL_CASES" "$URL100" <<'PY'
import json, sys
work, n, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(f"{work}/e1.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"id": f"c{i}", "question": f"question {i}", "expected": "Benchmark"}) + "\n")
with open(f"{work}/promptfoo.yaml", "w") as f:
    f.write("description: bench eval\nsharing: false\nprompts: ['Answer briefly: {{question}}']\n")
    f.write(f"providers:\n  - id: openai:chat:gpt-4o-mini\n    config: {{ apiBaseUrl: '{url}', apiKey: sk-bench }}\n")
    f.write("tests:\n")
    for i in range(n):
        f.write(f"  - vars: {{ question: 'question {i}' }}\n    assert: [{{ type: contains, value: Benchmark }}]\n")
PY
E1_STORE=$WORK/e1.db
if [ "${PEERS:-1}" != 0 ] && bash bench/promptfoo.sh install >&2; then
  PROMPTFOO=$(bash bench/promptfoo.sh bin)
  PROMPTFOO_CONFIG_DIR=$WORK/promptfoo-config OPENAI_BASE_URL=$URL100 AGENTRACE_STORE=$E1_STORE \
    measure e1_eval 3 -- "$BIN" -q eval "$WORK/e1.yaml" --dataset "$WORK/e1.jsonl" -j 50 \
    --format json --and e1_promptfoo -- "$PROMPTFOO" eval -c "$WORK/promptfoo.yaml" --no-cache \
    -j 50 -o "$WORK/promptfoo-out.json" >>"$RESULTS"
else
  OPENAI_BASE_URL=$URL100 AGENTRACE_STORE=$E1_STORE measure e1_eval 3 -- "$BIN" -q eval \
    "$WORK/e1.yaml" --dataset "$WORK/e1.jsonl" -j 50 --format json >>"$RESULTS"
fi

measure b4_version 20 -- "$BIN" --version >>"$RESULTS"
AGENTRACE_STORE=$TRACES_DB measure b4_show_last 20 -- "$BIN" show last >>"$RESULTS"
fi

python3 - "$RESULTS" "$STEPS" "$PAR" "$SPANS" "$TRACES" "${SERVE_SPANS:-0}" "${EVAL_CASES:-0}" \
  "$INGEST_BODIES" "$INGEST_KIND" "${ONLY:-}" "$WIDE" <<'PY'
import json, os, platform, subprocess, sys
path, steps, par, spans, traces, serve_spans, eval_cases, ingest_bodies = sys.argv[1], *map(int, sys.argv[2:9])
ingest_kind, only, wide = sys.argv[9], sys.argv[10], int(sys.argv[11])
r = {j["name"]: j for j in map(json.loads, open(path))}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
cores = len(os.sched_getaffinity(0))
machine = f"{os.cpu_count()} cores ({cores} usable), {cpu}, {platform.system()} {platform.release()}"
# C1 before issue 19's work (commit 6cf9b16, measured with this script on 2 cores): the
# target is half of it. IR_BEFORE=N compares with another figure.
IR_BEFORE_6CF9B16 = 751_000
IR_BEFORE = int(os.environ.get("IR_BEFORE", "0")) or IR_BEFORE_6CF9B16
rows, per_step = [], None
if "b1_sequential" in r:
    per_step = (r["b1_sequential"]["wall_ms"] - r["b1_one_step"]["wall_ms"]) / max(steps - 1, 1)
    rows.append(("B1", f"{steps} sequential agent steps, 0 ms latency", f"{r['b1_sequential']['wall_ms']:.0f} ms wall, {per_step:.3f} ms/step, {r['b1_sequential']['rss_mib']} MiB RSS", "≤ 0.3 ms/step, ≤ 20 MB", per_step <= 0.3 and r["b1_sequential"]["rss_mib"] <= 20))
if "b2_parallel" in r:
    startup = r["b1_one_step"]["wall_ms"]
    rows.append(("B0", "start-up: a one-step workflow, 0 ms latency", f"{startup:.1f} ms wall", "-", None))
    for pin, sfx in ((f"{cores} cores", ""), ("1 core", "_1cpu")):
        b2, f2 = r[f"b2_parallel{sfx}"]["wall_ms"], r[f"b2_floor{sfx}"]["wall_ms"]
        bw, fw = r[f"b2w_parallel{sfx}"]["wall_ms"], r[f"b2w_floor{sfx}"]["wall_ms"]
        if sfx == "":
            rows.append(("B2", f"{par} agent steps in one parallel, 100 ms, {pin}", f"{b2:.0f} ms wall; floor {f2:.0f} ms ({b2 / f2:.2f}×)", f"≤ 110 ms + start-up ({startup:.0f} ms)", b2 <= 110 + startup))
            rows.append(("B2w", f"{wide} agent steps in one parallel, 100 ms, {pin}", f"{bw:.0f} ms wall; floor {fw:.0f} ms ({bw / fw:.2f}×)", "≤ 1.3× floor (2 cores)" if cores <= 2 else "≤ 1.1× floor (16 cores)", bw <= (1.3 if cores <= 2 else 1.1) * fw))
        else:
            rows.append(("B2", f"  the same pinned to {pin} (taskset)", f"{b2:.0f} ms wall; floor {f2:.0f} ms ({b2 / f2:.2f}×)", "-", None))
            rows.append(("B2w", f"  the same pinned to {pin} (taskset)", f"{bw:.0f} ms wall; floor {fw:.0f} ms ({bw / fw:.2f}×)", "-", None))
    rows.append(("B2", f"  {par} at 0 ms latency; what 100 ms calls add", f"{r['b2_parallel_0ms']['wall_ms']:.0f} ms wall; +{r['b2_parallel']['wall_ms'] - r['b2_parallel_0ms']['wall_ms']:.0f} ms", "-", None))
    if "c1_callgrind" in r:
        c = r["c1_callgrind"]
        per = c["ir_per_branch"]
        rows.append(("C1", f"instructions per branch (callgrind, {c['n_wide']} vs {c['n_small']} wide, 0 ms)", f"{per / 1000:.0f}k Ir/branch ({c['ir_wide'] / 1e9:.2f} G Ir for {c['n_wide']})", f"≤ {IR_BEFORE / 2000:.0f}k (half of {IR_BEFORE / 1000:.0f}k)" if IR_BEFORE else "-", per <= IR_BEFORE / 2 if IR_BEFORE else None))
if "b3_show_json" in r:
    rows += [
        ("B3", f"show --format json, {spans} spans", f"{r['b3_show_json']['wall_ms']:.0f} ms", "< 1000 ms", r["b3_show_json"]["wall_ms"] < 1000),
        ("B3", f"show (tree), {spans} spans", f"{r['b3_show_tree']['wall_ms']:.0f} ms", "-", None),
        ("B3", f"list --group X --limit 20, {traces} traces", f"{r['b3_list_group']['wall_ms']:.1f} ms", "< 50 ms", r["b3_list_group"]["wall_ms"] < 50),
        ("B3", f"list, {traces} traces", f"{r['b3_list']['wall_ms']:.1f} ms", "-", None),
        ("B4", "agentrace --version", f"{r['b4_version']['wall_ms']:.1f} ms", "≤ 10 ms", r["b4_version"]["wall_ms"] <= 10),
        ("B4", "agentrace show last", f"{r['b4_show_last']['wall_ms']:.1f} ms", "≤ 10 ms", r["b4_show_last"]["wall_ms"] <= 10),
        ("B5", f"serve: POST /v1/traces, OTLP/JSON of {serve_spans} spans", f"{r['b5_ingest']['wall_ms']:.0f} ms ({r['b5_ingest']['wall_ms'] * 1000 / serve_spans:.0f} µs/span)", "-", None),
        ("B5", f"serve: GET /api/traces/ID, {serve_spans} spans", f"{r['b5_api_trace']['wall_ms']:.0f} ms", "-", None),
        ("B6", f"B1 pushed to serve (AGENTRACE_REMOTE) vs into the store", f"{r['b6_push']['wall_ms']:.0f} ms vs {r['b6_local']['wall_ms']:.0f} ms wall (+{r['b6_push']['wall_ms'] - r['b6_local']['wall_ms']:.0f} ms), {r['b6_push']['rss_mib']} MiB RSS", "-", None),
    ]
    ideal = eval_cases / 50 * 100
    e1 = r["e1_eval"]
    rows.append(("E1", f"eval: {eval_cases} cases, 1 agent step + 1 check, 100 ms, -j 50", f"{e1['wall_ms']:.0f} ms wall ({e1['wall_ms'] / ideal:.2f}× the ideal {ideal:.0f} ms), {e1['rss_mib']} MiB RSS", "≤ 1.1× ideal, < 40 MB", e1["wall_ms"] <= 1.1 * ideal and e1["rss_mib"] < 40))
    if "e1_promptfoo" in r:
        pf = r["e1_promptfoo"]
        rows.append(("E1", "  promptfoo on the same cases and server, -j 50", f"{pf['wall_ms']:.0f} ms wall, {pf['rss_mib']} MiB RSS; agentrace {pf['wall_ms'] / e1['wall_ms']:.1f}× faster", "≥ 6× faster", pf["wall_ms"] >= 6 * e1["wall_ms"]))
for clients in (1, 16):
    i = r.get(f"i1_ingest_{clients}")
    if i is None:
        continue
    ok = i["spans_per_s"] >= 50000 and i["errors"] == 0 and i["missing_spans"] == 0
    if clients == 16:
        ok = ok and i["p99_ms"] <= 100
    rows.append(("I1", f"serve ingest, {ingest_kind}: {clients} client(s) × {ingest_bodies} OTLP bodies of 100 spans", f"{i['spans_per_s']:.0f} spans/s, p50 {i['p50_ms']} / p99 {i['p99_ms']} / max {i['max_ms']} ms, {i['errors'] + i['missing_spans']} errors, {i['rss_mib']} MiB RSS", "≥ 50k spans/s" + (", p99 ≤ 100 ms" if clients == 16 else "") + ", 0 errors", ok))
mark = lambda ok: "-" if ok is None else ("met" if ok else "MISSED")
width = max(len(d) for _, d, *_ in rows)
print(f"machine: {machine}")
print(f"{'':3} {'benchmark':{width}}  {'measured':42}  {'target':24}  result")
for b, d, m, t, ok in rows:
    print(f"{b:3} {d:{width}}  {m:42}  {t:24}  {mark(ok)}")
if only:
    sys.exit(0)
json.dump({"machine": machine, "results": r, "per_step_ms": per_step}, open("bench/results.json", "w"), indent=2)
with open("bench/results.md", "w") as f:
    f.write(f"Measured on {machine} with `bash bench/run.sh`.\n\n| | benchmark | measured | target | result |\n|---|---|---|---|---|\n")
    for b, d, m, t, ok in rows:
        f.write(f"| {b} | {d} | {m} | {t} | {mark(ok)} |\n")
PY
