//! Templates at run time and the environment: templates see the trace id, group and step
//! status; a missing JSON field fails the step; a `.env` file never overrides the environment.

use serde_json::Value;

use crate::failures::AGENT_IN_SPAN;
use crate::support::*;
use crate::traces::*;
use crate::validation::{assert_diagnostic, pos};

#[test]
fn templates_see_the_trace_id_group_and_step_status() {
    let env = TestEnv::new().workflow(
        "context.yaml",
        r#"
name: Context
group_id: grp_ctx
steps:
  - id: first
    run: ["echo", "hi"]
  - id: about
    run: ["printf", "%s|%s|%s", "{{ trace.id }}", "{{ trace.group_id }}", "{{ steps.first.status }}"]
"#,
    );
    let (out, lines) = run_json(&env, "context.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let trace_id = lines[0]["trace_id"].as_str().unwrap();
    assert_eq!(
        lines[0]["outputs"]["about"],
        format!("{trace_id}|grp_ctx|ok")
    );
}

#[test]
fn validate_reports_undeclared_vars_and_unknown_step_fields() {
    let yaml = "name: V\nvars: { a: 1 }\nsteps:\n  - id: one\n    run: [\"echo\", \"{{ vars.nope }}\"]\n  - id: two\n    run: [\"echo\", \"{{ steps.ghost.output }}\"]\n";
    let env = TestEnv::new().workflow("v.yaml", yaml);
    let out = env.run(&["validate", "v.yaml"]);
    assert_exit(&out, 2);
    let (l1, c1) = pos(yaml, "\"{{ vars.nope", 0);
    let (l2, c2) = pos(yaml, "\"{{ steps.ghost", 0);
    assert_diagnostic(&stderr(&out), "v.yaml", l1, &[c1, c1 + 1], &["nope"]);
    assert_diagnostic(&stderr(&out), "v.yaml", l2, &[c2, c2 + 1], &["ghost"]);
}

#[test]
fn a_missing_field_of_json_output_fails_the_step_instead_of_rendering_empty() {
    let env = TestEnv::new().workflow(
        "strict.yaml",
        r#"
name: Strict
steps:
  - id: data
    run: ["echo", "{\"records\": 3}"]
  - span: Use
    steps:
      - id: use
        run: ["echo", "{{ steps.data.output.recrods }}"]
  - id: after
    run: ["echo", "never"]
"#,
    );
    let (out, lines) = run_json(&env, "strict.yaml", &["--offline"]);
    assert_exit(&out, 1);
    assert_eq!(lines[0]["status"], "error");
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let use_span = find(&trace, "custom", "Use");
    assert_eq!(use_span["status"], "error");
    let failed: Vec<&Value> = spans(&trace)
        .iter()
        .filter(|s| s["status"] == "error" && s["kind"] != "custom")
        .collect();
    assert_eq!(failed.len(), 1, "{}", outline(&trace).join("\n"));
    let message = failed[0]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("strict.yaml:9:")
            && message.contains("`steps.data.output.recrods` is undefined"),
        "the error points at the template and says what is undefined: {message}"
    );
    assert_eq!(
        outline(&trace),
        [
            "command ok",
            "custom Use error",
            "  command error",
            "command skipped"
        ],
        "the step after it does not run"
    );
}

#[test]
fn a_dotenv_file_supplies_model_access_without_overriding_the_environment() {
    let server = FakeOpenAI::start();
    let env = TestEnv::new()
        .workflow("agent.yaml", AGENT_IN_SPAN)
        .workflow(
            ".env",
            &format!(
                "OPENAI_BASE_URL={}\nOPENAI_API_KEY=sk-from-dotenv\n",
                server.base_url()
            ),
        );
    let out = env.run(&["run", "agent.yaml", "--format", "none"]);
    assert_exit(&out, 0);
    assert_eq!(
        server.requests()[0].headers["authorization"],
        "Bearer sk-from-dotenv"
    );

    let out = env.run_with(&["run", "agent.yaml", "--format", "none"], |c| {
        c.env("OPENAI_API_KEY", "sk-from-environment");
    });
    assert_exit(&out, 0);
    assert_eq!(
        server.requests()[1].headers["authorization"],
        "Bearer sk-from-environment",
        "the real environment wins over .env"
    );
    let bytes = env.store_bytes();
    for key in ["sk-from-dotenv", "sk-from-environment"] {
        assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
    }
}
