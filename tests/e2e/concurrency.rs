//! The cap on model calls in flight (`max_concurrency`, `--max-concurrency`).

use crate::support::*;
use crate::traces::*;

const SIX_CALLS: &str = r#"
name: Six calls
model: gpt-4o-mini
CAP
agents:
  helper: { instructions: You help. }
steps:
  - name: Fan out
    parallel:
      - { id: c1, agent: helper, input: one }
      - { id: c2, agent: helper, input: two }
      - { id: c3, agent: helper, input: three }
      - { id: c4, agent: helper, input: four }
      - { id: c5, agent: helper, input: five }
      - { id: c6, agent: helper, input: six }
"#;

/// Runs the six parallel calls against a fresh server whose answers take `delay_ms`; returns
/// the most requests the server saw in flight at once.
fn six_calls_in_flight(cap_in_file: &str, args: &[&str], delay_ms: u64) -> usize {
    let env = TestEnv::with_fake().workflow("six.yaml", &SIX_CALLS.replace("CAP", cap_in_file));
    env.server()
        .set_default(Reply::delayed(delay_ms, Reply::Echo));
    let mut all = vec!["run", "six.yaml", "--format", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_exit(&out, 0);
    assert_eq!(env.server().request_count(), 6);
    let trace = env.show_json("last");
    assert_eq!(of_kind(&trace, "generation").len(), 6);
    assert!(
        of_kind(&trace, "generation")
            .iter()
            .all(|g| g["status"] == "ok")
    );
    env.server().max_in_flight()
}

#[test]
fn max_concurrency_caps_the_model_calls_in_flight_across_the_run() {
    assert_eq!(
        six_calls_in_flight("", &[], 1000),
        6,
        "uncapped, all six branches call the model at once"
    );
    assert_eq!(six_calls_in_flight("", &["--max-concurrency", "2"], 500), 2);
    assert_eq!(six_calls_in_flight("max_concurrency: 3", &[], 500), 3);
    assert_eq!(
        six_calls_in_flight("max_concurrency: 3", &["--max-concurrency", "1"], 100),
        1,
        "the flag overrides the file"
    );
}
