//! `--var K=V` over a workflow's declared vars: the one place that decides what a value given
//! as text becomes, so that `validate --var` refuses exactly what `run --var` (and `eval --var`)
//! would, before anything runs.
//!
//! A string var takes the text as it is. A list or map var takes only JSON of its own kind:
//! `--var topics=a,b` would otherwise become the string `"a,b"`, and the `foreach:` over it
//! fail at run time after the steps before it ran. Other vars (numbers, booleans) take JSON
//! when the text is JSON and the text otherwise.

use serde_json::{Map, Value};

use super::Workflow;

/// A `--var` that the workflow cannot take.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum VarError {
    #[error("unknown var `{name}` in --var: {hint}")]
    Unknown { name: String, hint: String },

    #[error(
        "--var {name}: `{name}` is a {kind} (declared at {at}), so its value must be a JSON {kind}, \
         like --var '{name}={example}'; got `{text}`"
    )]
    WrongType {
        name: String,
        kind: &'static str,
        /// `FILE:LINE:COL` of the default.
        at: String,
        example: String,
        text: String,
    },
}

/// The workflow's defaults with `overrides` (`--var` pairs, in order) over them.
pub fn with_overrides(
    wf: &Workflow,
    overrides: &[(String, String)],
) -> Result<Map<String, Value>, VarError> {
    let mut vars: Map<String, Value> = wf
        .vars
        .iter()
        .map(|(name, value)| (name.clone(), value.value.clone()))
        .collect();
    for (name, text) in overrides {
        vars.insert(name.clone(), override_value(wf, name, text)?);
    }
    Ok(vars)
}

/// What `--var name=text` makes of the declared var `name`.
pub fn override_value(wf: &Workflow, name: &str, text: &str) -> Result<Value, VarError> {
    let Some(default) = wf.vars.get(name) else {
        let known: Vec<&str> = wf.vars.keys().map(String::as_str).collect();
        let hint = if known.is_empty() {
            format!("{} declares no vars", wf.path.display())
        } else {
            format!("declared vars: {}", known.join(", "))
        };
        return Err(VarError::Unknown {
            name: name.to_string(),
            hint,
        });
    };
    let parsed = serde_json::from_str::<Value>(text);
    let (kind, example) = match &default.value {
        Value::String(_) => return Ok(Value::String(text.to_string())),
        Value::Array(_) => match parsed {
            Ok(list @ Value::Array(_)) => return Ok(list),
            _ => {
                let items: Vec<&str> = text.split(',').map(str::trim).collect();
                ("list", serde_json::to_string(&items).unwrap_or_default())
            }
        },
        Value::Object(_) => match parsed {
            Ok(map @ Value::Object(_)) => return Ok(map),
            _ => ("map", r#"{"key": "value"}"#.to_string()),
        },
        _ => return Ok(parsed.unwrap_or_else(|_| Value::String(text.to_string()))),
    };
    Err(VarError::WrongType {
        name: name.to_string(),
        kind,
        at: format!(
            "{}:{}:{}",
            wf.path.display(),
            default.loc.line,
            default.loc.col
        ),
        example,
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workflow() -> Workflow {
        let source = "name: t\nvars:\n  topic: AI\n  topics: [a]\n  limits: { n: 1 }\n  n: 3\nsteps:\n  - run: [\"true\"]\n";
        let (wf, problems) = super::super::parse::parse_str("w.yaml", "w.yaml".into(), source);
        assert!(problems.is_empty(), "{problems:?}");
        wf.unwrap()
    }

    #[test]
    fn list_and_map_vars_take_only_json_of_their_kind() {
        let wf = workflow();
        let got = |name: &str, text: &str| override_value(&wf, name, text);
        assert_eq!(got("topics", r#"["x", "y"]"#), Ok(json!(["x", "y"])));
        assert_eq!(got("limits", r#"{"n": 2}"#), Ok(json!({"n": 2})));
        let err = got("topics", "a, b").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--var topics: `topics` is a list (declared at w.yaml:4:11), so its value must be a JSON list, like --var 'topics=["a","b"]'; got `a, b`"#
        );
        assert!(matches!(
            got("topics", r#"{"a": 1}"#),
            Err(VarError::WrongType { kind: "list", .. })
        ));
        assert!(matches!(
            got("limits", "[1]"),
            Err(VarError::WrongType { kind: "map", .. })
        ));
        // Strings take the text; numbers take JSON, or the text when it is not JSON.
        assert_eq!(got("topic", "[1]"), Ok(json!("[1]")));
        assert_eq!(got("n", "4"), Ok(json!(4)));
        assert_eq!(got("n", "four"), Ok(json!("four")));
        assert!(matches!(got("nope", "1"), Err(VarError::Unknown { .. })));
    }
}
