//! Property tests over parsing, validation and template rendering: on any input, never a
//! panic, every problem comes back as a diagnostic with a location inside the file, and the
//! YAML tree built straight from the parser's events is the one serde-saphyr builds.
//!
//! The inputs are mutations of real workflows (the examples and a file using every key) and
//! random token soup, so that most cases get past the YAML parser into the interesting parts.
//! `PROPTEST_CASES` sets the number of cases (default 10,000 per property here).

use std::path::PathBuf;

use proptest::prelude::*;

use super::check_str;
use super::template::Templates;

const SEEDS: &[&str] = &[
    include_str!("../../workflows/research.yaml"),
    include_str!("../../workflows/order.yaml"),
    include_str!("../../workflows/support.yaml"),
    include_str!("../../workflows/document.yaml"),
    include_str!("../../workflows/batch.yaml"),
    r#"name: Every key
vars: { topics: [a, b], n: 3 }
group_id: "{{ vars.n }}"
metadata: { k: "{{ vars.n }}" }
model: gpt-4o-mini
timeout: 2m
retry: { attempts: 2, backoff: 10ms, timeout: 5s }
max_concurrency: 2
budget: { max_tokens: 100, max_cost_usd: 0.5, max_duration: 1m }
prices: { m: { input: 1, output: 2 } }
provider: { base_url: "http://127.0.0.1:1/v1", api_key_env: KEY, stream: false }
tools:
  t: { description: d, parameters: { type: object, properties: { x: { type: string } } }, command: [echo, "{{ vars.n }}"] }
mcp_servers:
  s: { command: [x, y], env: { T: "${TOKEN:-d}$${x}" }, cwd: d, allowed_tools: [p, q], blocked_tools: [q2], startup_timeout: 5s, call_timeout: 1m }
  h: { url: "http://127.0.0.1:1/mcp", headers: { Authorization: "Bearer ${TOKEN}" } }
agents:
  c: { mcp: [h, { server: s, allowed_tools: [p], blocked_tools: [r] }] }
  a: { instructions: "Do {{ vars.n }}", tools: [t], handoffs: [b], max_turns: 3 }
  b: { instructions: B, output_schema: { type: object, properties: { y: { type: number } } } }
steps:
  - id: one
    agent: a
    input: "{{ vars.topics | join(', ') }}"
    session: "{{ vars.n }}"
    mock: [{ tool_calls: [{ name: t, arguments: { x: "1" } }] }, { handoff: b }, '{"y": 1}']
  - id: par
    parallel:
      - { id: p1, run: [echo, "{{ steps.one.output }}"], env: { A: "{{ vars.n }}" } }
      - span: S
        events: [{ name: E, attributes: { a: "{{ vars.n }}" } }]
        steps: [{ event: Inner, attributes: { b: 1 } }]
  - id: loop
    foreach: "{{ vars.topics }}"
    as: topic
    concurrency: 2
    steps: [{ id: l, if: "steps.one.status == 'ok'", run: [echo, "{{ topic }}"], timeout: 1s, continue_on_error: true }]
"#,
];

fn mutate(seed: &str, ops: &[(usize, u8, u8)]) -> String {
    let mut bytes: Vec<u8> = seed.as_bytes().to_vec();
    const ALPHABET: &[u8] = b" \n\t:-[]{}\"'#&*!|>%@`,.?{}$0123456789abcdefxyz_";
    for &(pos, op, b) in ops {
        if bytes.is_empty() {
            bytes.push(ALPHABET[b as usize % ALPHABET.len()]);
            continue;
        }
        let i = pos % bytes.len();
        let c = ALPHABET[b as usize % ALPHABET.len()];
        match op % 4 {
            0 => bytes[i] = c,
            1 => bytes.insert(i, c),
            2 => {
                bytes.remove(i);
            }
            _ => {
                // Duplicate a line: repeated keys, repeated ids.
                let start = bytes[..i]
                    .iter()
                    .rposition(|&x| x == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(bytes.len(), |p| i + p);
                let line: Vec<u8> = bytes[start..end].to_vec();
                bytes.splice(start..start, line.into_iter().chain([b'\n']));
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every diagnostic points inside the file (or at 1:1 for an empty one); the tree built from
/// the parser's events, where it is built, is serde-saphyr's.
fn check(source: &str) {
    super::node::plain_tree_is_serde_saphyrs(source);
    let (_, diags) = check_str("fuzz.yaml", PathBuf::from("fuzz.yaml"), source);
    let lines = source.lines().count().max(1) as u32 + 1;
    for d in diags {
        assert!(
            d.loc.line >= 1 && d.loc.line <= lines,
            "line out of range: {}",
            d.headline()
        );
        assert!(d.loc.col >= 1, "column out of range: {}", d.headline());
        assert!(!d.message.is_empty());
        // Rendering with a snippet must not panic either.
        let _ = d.clone().with_source(source).to_string();
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_workflows_never_panic_and_errors_have_locations(
        seed in 0..SEEDS.len(),
        ops in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        check(&mutate(SEEDS[seed], &ops));
    }

    #[test]
    fn token_soup_never_panics(
        tokens in prop::collection::vec(prop::sample::select(vec![
            "name: x\n", "steps:\n", "  - ", "id: a", "agent: a", "run: [echo, hi]", "run: \"echo {{ x }}\"",
            "span: S", "event: E", "parallel:", "foreach: ", "{{ steps.a.output }}", "{{", "}}", "{%", "\n",
            "    ", ": ", "[", "]", "{", "}", "\"", "'", "&a", "*a", "!!str ", "- ", "input: hi", "traces:",
            "agents: { a: { model: m } }", "if: ", "timeout: 1s", "mock: [", "tools:", "expect:",
        ]), 0..40),
    ) {
        check(&tokens.concat());
    }

    #[test]
    fn templates_never_panic(source in "\\PC{0,60}") {
        let t = Templates::new();
        let _ = t.check_syntax(&source);
        let _ = t.variables(&source);
        let ctx = minijinja::context! { vars => minijinja::context! { a => 1 } };
        let _ = t.render(&source, &ctx);
        let _ = t.render_value(&serde_json::Value::String(source), &ctx);
    }
}
