//! What the engine needs to use an MCP server as the workflow file defines it: the values of
//! `env:` and `headers:` with their `${VAR}` references filled from agentrace's own environment
//! at run time (so tokens never sit in the file, the same syntax Claude Code's and Cursor's
//! `.mcp.json` use), and which of a server's tools an agent is offered.
//!
//! One scanner ([`pieces`]) serves both the parser, which rejects malformed references at
//! `file:line:col` before anything runs, and [`expand_env`], so the two can never disagree on
//! what a value means.

use std::fmt;

use indexmap::IndexMap;

use super::diagnostic::Loc;
use super::schema::{AgentMcp, Located, McpServerDef};
use crate::trace::redact;

/// A malformed `${...}` reference in a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefError {
    /// `${` with no `}` after it.
    Unclosed,
    /// `${}` (or `${:-x}`).
    Empty,
    /// `${1X}`, `${A-B}`: the text between the braces is not a variable name.
    BadName(String),
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefError::Unclosed => write!(f, "has `${{` without a closing `}}`"),
            RefError::Empty => write!(f, "has `${{}}`, which names no variable"),
            RefError::BadName(name) => write!(
                f,
                "has `${{{name}}}`, which is not a variable name (letters, digits and `_`, not starting with a digit)"
            ),
        }
    }
}

/// The help line of a [`RefError`].
pub const REF_HELP: &str = "`${NAME}` is the value of environment variable NAME, `${NAME:-text}` the same with a default; write `$${` for a literal `${`";

/// One part of a value: text as written, or a reference to an environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// `${name}`, or `${name:-default}` (the default is used when the variable is unset or
    /// empty).
    Var {
        name: &'a str,
        default: Option<&'a str>,
    },
}

/// Whether `name` is an environment variable name a reference may use.
fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits a value into text and `${...}` references. `$${` is a literal `${`; any other `$` is
/// itself.
pub fn pieces(text: &str) -> Result<Vec<Piece<'_>>, RefError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at..];
        if let Some(escaped) = after.strip_prefix("$${") {
            // An escaped `${`: written as text, never read as a reference.
            out.push(Piece::Text(&rest[..at]));
            out.push(Piece::Text("${"));
            rest = escaped;
        } else if let Some(inner) = after.strip_prefix("${") {
            out.push(Piece::Text(&rest[..at]));
            let Some(end) = inner.find('}') else {
                return Err(RefError::Unclosed);
            };
            let body = &inner[..end];
            let (name, default) = match body.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (body, None),
            };
            if name.is_empty() {
                return Err(RefError::Empty);
            }
            if !is_var_name(name) {
                return Err(RefError::BadName(body.to_string()));
            }
            out.push(Piece::Var { name, default });
            rest = &inner[end + 1..];
        } else {
            out.push(Piece::Text(&rest[..=at]));
            rest = &rest[at + 1..];
        }
    }
    out.push(Piece::Text(rest));
    out.retain(|p| !matches!(p, Piece::Text("")));
    Ok(out)
}

/// A value with its references filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expanded {
    pub value: String,
    /// The non-empty values that came from environment variables, to be registered as secrets
    /// (`crate::trace::redact::register`) before the value is sent anywhere.
    pub from_env: Vec<String>,
}

/// Why a value could not be filled in at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvError {
    /// `${NAME}` (without a default) names a variable that is not set.
    Unset { var: String, loc: Loc },
    /// A malformed reference (the parser rejects these, so only a value built elsewhere has
    /// one).
    Malformed { error: RefError, loc: Loc },
}

impl EnvError {
    /// Where the value that holds the reference is in the workflow file.
    pub fn loc(&self) -> Loc {
        match self {
            EnvError::Unset { loc, .. } | EnvError::Malformed { loc, .. } => *loc,
        }
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvError::Unset { var, .. } => write!(f, "environment variable `{var}` is not set"),
            EnvError::Malformed { error, .. } => write!(f, "the value {error}"),
        }
    }
}

impl std::error::Error for EnvError {}

/// Fills the `${VAR}` references of an `env:` or `headers:` value from `lookup` (the engine
/// passes `|name| std::env::var(name).ok()`). A variable set to the empty string gives the
/// empty string, unless the reference has a default.
pub fn expand_env(
    template: &Located<String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Expanded, EnvError> {
    let pieces = pieces(&template.value).map_err(|error| EnvError::Malformed {
        error,
        loc: template.loc,
    })?;
    let mut value = String::new();
    let mut from_env = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(text) => value.push_str(text),
            Piece::Var { name, default } => match (lookup(name), default) {
                (Some(v), Some(default)) if v.is_empty() => value.push_str(default),
                (Some(v), _) => {
                    value.push_str(&v);
                    if !v.is_empty() {
                        from_env.push(v);
                    }
                }
                (None, Some(default)) => value.push_str(default),
                (None, None) => {
                    return Err(EnvError::Unset {
                        var: name.to_string(),
                        loc: template.loc,
                    });
                }
            },
        }
    }
    Ok(Expanded { value, from_env })
}

/// A server's `env:` or `headers:` with every value filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpandedMap {
    pub values: IndexMap<String, String>,
    /// What to register with `crate::trace::redact::register` before anything is sent: every
    /// value that came from a variable, and the whole value (and the part after its first
    /// space, the token of `Bearer TOKEN`) of an entry whose name says it is a credential
    /// (`Authorization`, `X-Api-Key`, `GITHUB_TOKEN`), as for `provider.headers`.
    pub secrets: Vec<String>,
}

/// Fills every value of an `env:` or `headers:` mapping ([`expand_env`] each, in file order);
/// the first unset variable is the error.
pub fn expand_map(
    map: &IndexMap<String, Located<String>>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ExpandedMap, EnvError> {
    let mut out = ExpandedMap::default();
    for (name, template) in map {
        let expanded = expand_env(template, &lookup)?;
        out.secrets.extend(expanded.from_env);
        if redact::secret_name(name) {
            if let Some((_, token)) = expanded.value.split_once(' ') {
                out.secrets.push(token.to_string());
            }
            out.secrets.push(expanded.value.clone());
        }
        out.values.insert(name.clone(), expanded.value);
    }
    out.secrets.retain(|s| !s.trim().is_empty());
    Ok(out)
}

impl AgentMcp {
    /// Whether the agent is offered `tool` of `server` (this entry's server): allowed by both
    /// the server's and this entry's `allowed_tools` (where given) and blocked by neither.
    pub fn offers(&self, server: &McpServerDef, tool: &str) -> bool {
        let allowed = |list: &Option<Vec<Located<String>>>| {
            list.as_ref()
                .is_none_or(|l| l.iter().any(|t| t.value == tool))
        };
        let blocked = |list: &[Located<String>]| list.iter().any(|t| t.value == tool);
        allowed(&server.allowed_tools)
            && allowed(&self.allowed_tools)
            && !blocked(&server.blocked_tools)
            && !blocked(&self.blocked_tools)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Located<String> {
        Located::new(text.to_string(), Loc { line: 3, col: 7 })
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret-value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn references_are_filled_and_their_values_returned_as_secrets() {
        let e = expand_env(&at("Bearer ${TOKEN}"), env).unwrap();
        assert_eq!(e.value, "Bearer s3cret-value");
        assert_eq!(e.from_env, ["s3cret-value"]);
        let e = expand_env(&at("plain $HOME and $5 and a$"), env).unwrap();
        assert_eq!(e.value, "plain $HOME and $5 and a$");
        assert!(e.from_env.is_empty());
        let e = expand_env(&at("$${TOKEN} is ${TOKEN}"), env).unwrap();
        assert_eq!(e.value, "${TOKEN} is s3cret-value");
        let e = expand_env(&at("${MISSING:-fallback}/${EMPTY:-dflt}/${EMPTY}."), env).unwrap();
        assert_eq!(e.value, "fallback/dflt/.");
        assert!(e.from_env.is_empty());
    }

    #[test]
    fn an_unset_variable_is_an_error_naming_it_and_the_place() {
        let err = expand_env(&at("x ${NOPE} y"), env).unwrap_err();
        assert_eq!(err.to_string(), "environment variable `NOPE` is not set");
        assert_eq!(err.loc(), Loc { line: 3, col: 7 });
        let err = expand_env(&at("${A"), env).unwrap_err();
        assert_eq!(err.to_string(), "the value has `${` without a closing `}`");
    }

    #[test]
    fn a_map_is_filled_in_order_and_credential_entries_are_secrets_whole() {
        let map: IndexMap<String, Located<String>> = [
            ("Authorization", "Bearer ${TOKEN}"),
            ("X-Api-Key", "literal-key-123"),
            ("Accept", "text/plain ${EMPTY:-x}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), at(v)))
        .collect();
        let e = expand_map(&map, env).unwrap();
        assert_eq!(e.values["Authorization"], "Bearer s3cret-value");
        assert_eq!(e.values["Accept"], "text/plain x");
        assert_eq!(
            e.secrets,
            [
                "s3cret-value",
                "s3cret-value",
                "Bearer s3cret-value",
                "literal-key-123"
            ]
        );
        let mut map = map;
        map.insert("Z".into(), at("${NOPE}"));
        assert_eq!(
            expand_map(&map, env).unwrap_err().to_string(),
            "environment variable `NOPE` is not set"
        );
    }

    #[test]
    fn an_agent_is_offered_what_both_lists_allow_and_neither_blocks() {
        let names = |v: &[&str]| v.iter().map(|t| at(t)).collect::<Vec<_>>();
        let server = McpServerDef {
            name: at("s"),
            transport: super::super::McpTransport::Http {
                url: at("http://h/mcp"),
                headers: IndexMap::new(),
            },
            allowed_tools: Some(names(&["a", "b", "c"])),
            blocked_tools: names(&["c"]),
            startup_timeout: None,
            call_timeout: None,
            loc: Loc { line: 1, col: 1 },
        };
        let entry = |allowed: Option<&[&str]>, blocked: &[&str]| AgentMcp {
            server: at("s"),
            allowed_tools: allowed.map(names),
            blocked_tools: names(blocked),
        };
        let offered = |e: &AgentMcp| {
            ["a", "b", "c", "d"]
                .into_iter()
                .filter(|t| e.offers(&server, t))
                .collect::<Vec<_>>()
        };
        assert_eq!(offered(&entry(None, &[])), ["a", "b"]);
        assert_eq!(offered(&entry(Some(&["b", "c", "d"]), &[])), ["b"]);
        assert_eq!(offered(&entry(None, &["a"])), ["b"]);
    }

    #[test]
    fn malformed_references_are_told_apart() {
        assert_eq!(pieces("a ${").unwrap_err(), RefError::Unclosed);
        assert_eq!(pieces("${}").unwrap_err(), RefError::Empty);
        assert_eq!(pieces("${:-x}").unwrap_err(), RefError::Empty);
        assert_eq!(pieces("${1X}").unwrap_err(), RefError::BadName("1X".into()));
        assert_eq!(
            pieces("${A-B}").unwrap_err(),
            RefError::BadName("A-B".into())
        );
        assert_eq!(
            pieces("k=${_A1:-d}!").unwrap(),
            [
                Piece::Text("k="),
                Piece::Var {
                    name: "_A1",
                    default: Some("d")
                },
                Piece::Text("!")
            ]
        );
    }
}
