//! Templates: their syntax, and every reference they make (`vars.x`, `steps.<id>.output`,
//! `trace.id`, a loop's variable) against the point of execution where they are rendered; also
//! `steps.<id>.status` compared with a value it never takes, and templates in shell scripts.

use serde_json::Value;

use super::super::Workflow;
use super::super::diagnostic::{Loc, did_you_mean, list, suggest};
use super::super::schema::{EventDef, Located, LocatedValue, StepKind};
use super::super::template::{Unknown, is_template};
use super::{Checks, Hidden, Scope, Validator};

/// Names minijinja provides itself; templates may call them.
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "lipsum",
    "cycler",
    "joiner",
    "debug",
];
/// Where minijinja documents its built-in filters and tests (`filters/`, `tests/`).
const BUILTINS: &str = "https://docs.rs/minijinja/2/minijinja/";
const STEP_FIELDS: &[&str] = &["output", "status"];
/// The values of `steps.<id>.status`.
const STATUSES: &[&str] = &["ok", "error", "skipped"];
const TRACE_FIELDS: &[&str] = &["id", "group_id"];

impl<'w> Validator<'w> {
    pub(super) fn script(&mut self, script: &Located<String>) {
        if is_template(&script.value) {
            self.report(
                script.loc,
                "templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form".into(),
                Some(
                    "pass the value through `env:` (env: { TOPIC: \"{{ vars.topic }}\" }, then use \
                     \"$TOPIC\" in the script) or use the argv form `run: [prog, arg]`, which never \
                     goes through a shell"
                        .into(),
                ),
                1,
            );
        }
    }

    pub(super) fn event(&mut self, event: &EventDef, scope: &Scope) {
        self.template(&event.name, scope);
        for value in event.attributes.values() {
            self.value(value, scope);
        }
    }

    /// Every string leaf of a YAML value is a template.
    pub(super) fn value(&mut self, value: &LocatedValue, scope: &Scope) {
        fn leaves<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
                Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
                _ => {}
            }
        }
        let mut strings = Vec::new();
        leaves(&value.value, &mut strings);
        for s in strings {
            self.check(s, value.loc, scope);
        }
    }

    pub(super) fn template(&mut self, text: &Located<String>, scope: &Scope) {
        self.check(&text.value, text.loc, scope);
    }

    pub(super) fn check(&mut self, text: &str, loc: Loc, scope: &Scope) {
        if !is_template(text) {
            return;
        }
        let uses = match self.templates.uses(text) {
            Ok(uses) => uses,
            Err(err) => {
                if scope.checks != Checks::OnlySteps {
                    self.report(
                        loc,
                        format!("template error: {}", error_text(&err)),
                        None,
                        1,
                    );
                }
                return;
            }
        };
        self.paths(&uses.variables, loc, scope);
        self.unknown(&uses.unknown, loc, scope);
        for code in code_segments(text) {
            self.statuses(code, loc);
        }
    }

    /// Filters and tests the template engine does not have: the render would fail when it
    /// reaches them, after the steps before it ran.
    pub(super) fn unknown(&mut self, unknown: &[Unknown], loc: Loc, scope: &Scope) {
        if scope.checks == Checks::OnlySteps {
            return; // reported with the template's first check
        }
        for name in unknown {
            let (kind, name, example) = match name {
                Unknown::Filter(name) => ("filter", name, "`x | upper`"),
                Unknown::Test(name) => ("test", name, "`x is defined`"),
            };
            self.report(
                loc,
                format!("unknown {kind} `{name}`"),
                Some(format!(
                    "templates have minijinja's built-in {kind}s ({example}); see {BUILTINS}{kind}s/index.html"
                )),
                1,
            );
        }
    }

    /// The variable paths a template or an expression reads, against what `scope` can see.
    pub(super) fn paths(&mut self, paths: &[String], loc: Loc, scope: &Scope) {
        for path in paths {
            let parts: Vec<&str> = path.split('.').collect();
            if let (Some(only), Some(root)) = (scope.only, parts.first())
                && scope.checks != Checks::OnlySteps
                && !only.roots.contains(root)
                && !GLOBALS.contains(root)
            {
                self.report(
                    loc,
                    format!("`{path}`: {}", only.message),
                    Some(only.help.to_string()),
                    1,
                );
                continue;
            }
            match parts[..] {
                ["steps", id, ref rest @ ..] => {
                    if scope.checks != Checks::NotSteps {
                        self.step_ref(id, rest.first().copied(), loc, scope);
                    }
                }
                _ if scope.checks == Checks::OnlySteps => {}
                [root, ..] if scope.locals.iter().any(|l| l == root) => {}
                ["vars", name, ..] => {
                    if !self.wf.vars.contains_key(name) {
                        let suggestion = suggest(name, self.wf.vars.keys().map(String::as_str))
                            .map(|s| format!("vars.{s}"));
                        let help = suggestion.is_none().then(|| {
                            format!(
                                "declare it under `vars:` with a default value (`--var {name}=...` overrides it)"
                            )
                        });
                        self.report(
                            loc,
                            format!(
                                "unknown variable `vars.{name}`{}",
                                did_you_mean(suggestion.as_deref())
                            ),
                            help,
                            1,
                        );
                    }
                }
                ["trace", field, ..] => {
                    if !TRACE_FIELDS.contains(&field) {
                        let suggestion = suggest(field, TRACE_FIELDS.iter().copied())
                            .map(|s| format!("trace.{s}"));
                        self.report(
                            loc,
                            format!(
                                "`trace.{field}`: a trace has `id` and `group_id`{}",
                                did_you_mean(suggestion.as_deref())
                            ),
                            None,
                            1,
                        );
                    }
                }
                [root, ..] => {
                    if !matches!(root, "vars" | "steps" | "trace" | "case")
                        && !GLOBALS.contains(&root)
                    {
                        self.unknown_root(root, loc, scope);
                    }
                }
                [] => {}
            }
        }
    }

    fn unknown_root(&mut self, root: &str, loc: Loc, scope: &Scope) {
        let suggestion = suggest(root, scope.locals.iter().map(String::as_str));
        let message = match (suggestion, scope.locals) {
            (Some(_), _) => format!("unknown variable `{root}`{}", did_you_mean(suggestion)),
            (None, []) => {
                format!("unknown variable `{root}`; templates can use `vars`, `steps` and `trace`")
            }
            (None, locals) => {
                let mut names: Vec<String> = ["vars", "steps", "trace"]
                    .into_iter()
                    .map(String::from)
                    .chain(locals.iter().cloned())
                    .collect();
                let last = names.pop().unwrap_or_default();
                format!(
                    "unknown variable `{root}`; templates can use {} and `{last}` here",
                    list(&names)
                )
            }
        };
        // A loop's variable used outside its loop.
        let wf: &'w Workflow = self.wf;
        let help = wf.all_steps().into_iter().find_map(|step| match &step.kind {
            StepKind::Foreach { as_name, .. } if as_name == root => Some(format!(
                "`{root}` is the variable of the `foreach:` on line {}; it is only defined in that loop's `steps:`",
                step.loc.line
            )),
            _ => None,
        });
        self.report(loc, message, help, 1);
    }

    /// `steps.<id>.status` compared with a literal it can never equal (GitHub Actions habits
    /// such as `'success'` included).
    pub(super) fn statuses(&mut self, code: &str, loc: Loc) {
        for (id, literal) in status_comparisons(code) {
            if STATUSES.contains(&literal.as_str()) {
                continue;
            }
            let suggestion = match literal.to_lowercase().as_str() {
                "success" | "succeeded" | "passed" | "completed" => Some("ok"),
                "failure" | "failed" | "fail" | "cancelled" | "canceled" => Some("error"),
                "skip" => Some("skipped"),
                other => suggest(other, STATUSES.iter().copied()),
            };
            self.report(
                loc,
                format!(
                    "`steps.{id}.status` is `ok`, `error` or `skipped`, never `{literal}`{}",
                    did_you_mean(suggestion)
                ),
                None,
                1,
            );
        }
    }

    fn step_ref(&mut self, id: &str, field: Option<&str>, loc: Loc, scope: &Scope) {
        if !self.all_ids.contains(id) {
            let suggestion = suggest(id, self.all_ids.iter().map(String::as_str));
            let help = suggestion
                .is_none()
                .then(|| "only steps with an `id:` can be referenced".to_string());
            self.report(
                loc,
                format!("unknown step `{id}`{}", did_you_mean(suggestion)),
                help,
                1,
            );
        } else if scope.current == Some(id) {
            self.report(
                loc,
                format!("step `{id}` cannot use its own output"),
                None,
                1,
            );
        } else if let Some(why) = (!scope.done.contains(id))
            .then_some(scope.hidden)
            .flatten()
            .and_then(|hidden| hidden.get(id))
        {
            let (message, help) = match why {
                Hidden::InLoop(Some(loop_id)) => (
                    format!(
                        "step `{id}` is inside a `foreach:`; use the loop's own output (`steps.{loop_id}.output`)"
                    ),
                    "the steps of a loop run once per item; the loop's output is the list of each item's last output",
                ),
                Hidden::InLoop(None) => (
                    format!(
                        "step `{id}` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)"
                    ),
                    "give the `foreach:` step an `id:`; its output is the list of each item's last output",
                ),
                Hidden::Beside => (
                    format!("step `{id}` runs in a parallel branch beside this one"),
                    "the branches of a `parallel:` step run at the same time; use their outputs in the steps after it",
                ),
            };
            self.report(loc, message, Some(help.to_string()), 1);
        } else if !scope.done.contains(id) {
            let help = scope
                .note
                .unwrap_or("a template can only use the outputs of steps that run before it")
                .to_string();
            self.report(
                loc,
                format!("step `{id}` has not run yet at this point"),
                Some(help),
                1,
            );
        }
        if let Some(field) = field
            && !STEP_FIELDS.contains(&field)
        {
            let suggestion =
                suggest(field, STEP_FIELDS.iter().copied()).map(|s| format!("steps.{id}.{s}"));
            self.report(
                loc,
                format!(
                    "`steps.{id}.{field}`: a step has `output` and `status`{}",
                    did_you_mean(suggestion.as_deref())
                ),
                None,
                1,
            );
        }
    }
}

/// minijinja's message without its location suffix.
pub(super) fn error_text(err: &minijinja::Error) -> String {
    let message = err.to_string();
    match message.rfind(" (in ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

/// The code inside a template's `{{ }}` and `{% %}` tags.
fn code_segments(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start..];
        let close = if after.starts_with("{{") {
            "}}"
        } else if after.starts_with("{%") {
            "%}"
        } else {
            rest = &rest[start + 1..];
            continue;
        };
        let body = &after[2..];
        match body.find(close) {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + close.len()..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// `(id, literal)` for each `steps.<id>.status == 'literal'` (or `!=`, either way round) in an
/// expression.
fn status_comparisons(code: &str) -> Vec<(String, String)> {
    #[derive(Debug, PartialEq)]
    enum Token {
        Path(String),
        Literal(String),
        Compare,
        Other,
    }
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Path(code[i..end].to_string()));
        } else if c == '\'' || c == '"' {
            let mut literal = String::new();
            for (_, d) in chars.by_ref() {
                if d == c {
                    break;
                }
                literal.push(d);
            }
            tokens.push(Token::Literal(literal));
        } else if (c == '=' || c == '!') && chars.peek().is_some_and(|&(_, d)| d == '=') {
            chars.next();
            tokens.push(Token::Compare);
        } else if !c.is_whitespace() {
            tokens.push(Token::Other);
        }
    }
    let status_of = |token: &Token| match token {
        Token::Path(path) => path
            .strip_prefix("steps.")?
            .strip_suffix(".status")
            .filter(|id| !id.is_empty() && !id.contains('.'))
            .map(str::to_string),
        _ => None,
    };
    let mut out = Vec::new();
    for window in tokens.windows(3) {
        let [left, Token::Compare, right] = window else {
            continue;
        };
        match (left, right) {
            (Token::Literal(literal), path) | (path, Token::Literal(literal)) => {
                if let Some(id) = status_of(path) {
                    out.push((id, literal.clone()));
                }
            }
            _ => {}
        }
    }
    out
}
