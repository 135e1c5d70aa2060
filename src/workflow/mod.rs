//! Workflow files: the typed schema, parsing YAML with locations, validation, and templates.
//!
//! [`load`] is the way in: read the file, [`parse`] it into a [`Workflow`], [`validate`] the
//! relations parsing cannot see, and report every problem of both in one error. Parsing and
//! validation do not know each other; both report through [`diagnostic`].

pub mod budget;
pub mod diagnostic;
pub mod error;
pub mod expect;
#[cfg(test)]
mod fuzz;
pub mod mcp;
pub mod node;
pub mod parse;
pub mod schema;
pub mod scores;
pub mod template;
pub mod validate;
pub mod vars;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Loc};
pub use error::WorkflowError;
pub use schema::*;

/// The largest workflow file read (10 MiB); a path to `/dev/zero` or an endless pipe stops
/// there instead of filling memory.
pub const MAX_WORKFLOW_BYTES: u64 = 10 << 20;

/// Reads a workflow as UTF-8 text, at most [`MAX_WORKFLOW_BYTES`]. Pipes and devices are read
/// like files (`run <(generate)` works), up to the same limit.
fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_WORKFLOW_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_WORKFLOW_BYTES {
        return Err(std::io::Error::other(format!(
            "the file is over {} MiB, the limit of a workflow file",
            MAX_WORKFLOW_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Reads, parses and validates a workflow file; every problem in one
/// [`WorkflowError::Invalid`] (sorted by line/col), or [`WorkflowError::Read`].
pub fn load(path: &Path) -> Result<Workflow, WorkflowError> {
    let source = read_capped(path).map_err(|source| WorkflowError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let (workflow, mut diagnostics) = check_str(&file, path.to_path_buf(), &source);
    match workflow {
        Some(wf) if diagnostics.is_empty() => Ok(wf),
        _ => {
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::new(
                    &file,
                    Loc { line: 1, col: 1 },
                    "not a usable workflow",
                ));
            }
            diagnostics.sort_by_key(|d| d.loc);
            Err(WorkflowError::Invalid {
                diagnostics: diagnostics
                    .into_iter()
                    .map(|d| d.with_source(&source))
                    .collect(),
            })
        }
    }
}

/// Parses then validates text: what could be built, and every problem parsing and validation
/// found, in file order. `file` is the label used in messages.
pub fn check_str(file: &str, path: PathBuf, source: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
    let (workflow, mut diagnostics) = parse::parse_str(file, path, source);
    if let Some(wf) = &workflow {
        diagnostics.extend(validate::validate(wf));
    }
    diagnostics.sort_by_key(|d| d.loc);
    (workflow, diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_reports_unreadable_files_and_gathers_every_problem_with_snippets() {
        let missing = load(Path::new("/nonexistent/w.yaml"));
        assert!(matches!(missing, Err(WorkflowError::Read { .. })));

        let dir = std::env::temp_dir().join(format!("agentrace-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(
            &path,
            "name: t\nsteps:\n  - id: a\n    run: \"echo {{ vars.x }}\"\n    inptu: 1\n",
        )
        .unwrap();
        let Err(WorkflowError::Invalid { diagnostics }) = load(&path) else {
            panic!("invalid expected")
        };
        let lines: Vec<(u32, Option<&str>)> = diagnostics
            .iter()
            .map(|d| (d.loc.line, d.line_text.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [
                (4, Some("    run: \"echo {{ vars.x }}\"")),
                (5, Some("    inptu: 1"))
            ]
        );
        std::fs::write(&path, parse::tests::EXAMPLE).unwrap();
        assert!(load(&path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
