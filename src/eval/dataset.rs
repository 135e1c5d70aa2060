//! Datasets: the cases an evaluation runs its workflow on, read from JSONL, CSV or a YAML list.
//!
//! Every case has an id (its `id` field, else the line it starts on), the vars the workflow runs
//! with, and the reference fields that scorers read (`expected`, and anything else). With a
//! `vars` object, the vars are that object and every other field is reference; without one, the
//! case's top-level fields are its vars (all but `id` and `expected`), and all of them can be
//! read as reference too. A CSV file is the flat form with text values: the header names the
//! fields.
//!
//! Everything is checked before a single case runs, and every problem is reported at its line
//! (`cases.jsonl:7:1: …`) with the line shown, like a workflow file's: a line that is not a JSON
//! object, a `vars` that is not an object, an id that is not text or a whole number, the same id
//! twice, a file with no cases.

use std::path::Path;

use serde_json::{Map, Value};

use crate::trace::json_kind;
use crate::workflow::diagnostic::{Diagnostic, Loc};
use crate::workflow::node::{self, Node, NodeKind};

/// The largest dataset file read (a dataset is read whole, and every case is kept).
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// How a dataset file is written; chosen by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Yaml,
}

impl Format {
    /// The format of `path` by its extension: `.jsonl`/`.ndjson`, `.csv`, `.yaml`/`.yml`.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// One case of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Its `id`, or the line it starts on; unique in the dataset.
    pub id: String,
    /// The line it starts on (1-based).
    pub line: u32,
    /// What the workflow runs with (`--var`s of this case).
    pub vars: Map<String, Value>,
    /// What scorers may read besides the outputs: `expected` and any other field.
    pub reference: Map<String, Value>,
}

/// A dataset read and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The file's name without its extension (`cases` for `evals/cases.jsonl`).
    pub name: String,
    /// `sha256:` and the hex SHA-256 of the file's bytes: two experiments ran on the same cases
    /// exactly when their hashes are equal.
    pub hash: String,
    pub cases: Vec<Case>,
}

/// Everything wrong with a dataset, each at its line.
#[derive(Debug)]
pub struct DatasetError {
    pub problems: Vec<Diagnostic>,
}

impl std::fmt::Display for DatasetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DatasetError {}

/// At most this many problems are reported; a file of 100,000 bad lines says the first ones.
const MAX_PROBLEMS: usize = 20;

/// Reads and checks the dataset at `path` (`shown` is the path as the user wrote it).
pub fn load(path: &Path, shown: &str) -> Result<Dataset, DatasetError> {
    let one = |message: String| DatasetError {
        problems: vec![Diagnostic::new(shown, Loc { line: 0, col: 0 }, message)],
    };
    let format = Format::of(path).ok_or_else(|| {
        one("a dataset is a .jsonl, .csv or .yaml file (the extension says which)".to_string())
    })?;
    let size = std::fs::metadata(path)
        .map_err(|e| {
            one(format!(
                "cannot read the dataset: {}",
                crate::causes::chain(&e)
            ))
        })?
        .len();
    if size > MAX_BYTES {
        return Err(one(format!(
            "the dataset is {size} bytes; at most {MAX_BYTES} are read"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        one(format!(
            "cannot read the dataset: {}",
            crate::causes::chain(&e)
        ))
    })?;
    let text =
        String::from_utf8(bytes).map_err(|e| one(format!("the dataset is not UTF-8 text: {e}")))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&text, format, &name, shown)
}

/// Reads a dataset from its text.
pub fn parse(text: &str, format: Format, name: &str, shown: &str) -> Result<Dataset, DatasetError> {
    let mut problems = Problems {
        file: shown,
        source: text,
        list: Vec::new(),
    };
    let raw = match format {
        Format::Jsonl => jsonl(text, &mut problems),
        Format::Csv => csv_rows(text, &mut problems),
        Format::Yaml => yaml(text, &mut problems),
    };
    checked(raw, problems, name, content_hash(text.as_bytes()))
}

/// The cases written inside a workflow file (`dataset: [ … ]`): each mapping with the line it
/// starts on in `source`, the workflow's text (`shown` names the file). The hash is of the
/// cases as JSON, so editing anything else in the workflow does not change it.
pub fn inline(
    rows: Vec<(u32, Map<String, Value>)>,
    name: &str,
    shown: &str,
    source: &str,
) -> Result<Dataset, DatasetError> {
    let as_json: Vec<&Map<String, Value>> = rows.iter().map(|(_, m)| m).collect();
    let hash = content_hash(
        serde_json::to_string(&as_json)
            .unwrap_or_default()
            .as_bytes(),
    );
    let problems = Problems {
        file: shown,
        source,
        list: Vec::new(),
    };
    checked(rows, problems, name, hash)
}

/// The cases of `raw` rows, each checked, ids unique; every problem of the rows and of reading
/// them (already in `problems`) in one error.
fn checked(
    raw: Vec<(u32, Map<String, Value>)>,
    mut problems: Problems<'_>,
    name: &str,
    hash: String,
) -> Result<Dataset, DatasetError> {
    let mut cases = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashMap::new();
    for (line, fields) in raw {
        let Some(case) = case(line, fields, &mut problems) else {
            continue;
        };
        if let Some(first) = seen.insert(case.id.clone(), case.line) {
            problems.at(
                line,
                format!(
                    "case id `{}` is used twice (first on line {first})",
                    case.id
                ),
            );
            continue;
        }
        cases.push(case);
    }
    if cases.is_empty() && problems.list.is_empty() {
        problems.at(1, "the dataset has no cases".to_string());
    }
    if !problems.list.is_empty() {
        return Err(DatasetError {
            problems: problems.list,
        });
    }
    Ok(Dataset {
        name: name.to_string(),
        hash,
        cases,
    })
}

struct Problems<'a> {
    file: &'a str,
    source: &'a str,
    list: Vec<Diagnostic>,
}

impl Problems<'_> {
    fn at(&mut self, line: u32, message: String) {
        self.at_col(line, 1, message);
    }

    fn at_col(&mut self, line: u32, col: u32, message: String) {
        if self.list.len() < MAX_PROBLEMS {
            let d = Diagnostic::new(self.file, Loc { line, col }, message).with_source(self.source);
            self.list.push(d);
        }
    }
}

/// One JSON object per line; blank lines are skipped.
fn jsonl(text: &str, problems: &mut Problems<'_>) -> Vec<(u32, Map<String, Value>)> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => rows.push((number, map)),
            Ok(other) => problems.at(
                number,
                format!("a case is a JSON object, found {}", json_kind(&other)),
            ),
            Err(e) => problems.at_col(
                number,
                u32::try_from(e.column()).unwrap_or(1).max(1),
                format!("invalid JSON: {}", strip_position(&e.to_string())),
            ),
        }
    }
    rows
}

/// A header row, then one case per record; values stay text.
fn csv_rows(text: &str, problems: &mut Problems<'_>) -> Vec<(u32, Map<String, Value>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            problems.at(1, format!("invalid CSV header: {}", csv_message(&e)));
            return Vec::new();
        }
    };
    let mut names = std::collections::HashSet::new();
    for name in &headers {
        if name.trim().is_empty() {
            problems.at(1, "a CSV column has no name in the header".to_string());
        } else if !names.insert(name) {
            problems.at(1, format!("the CSV header names column `{name}` twice"));
        }
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record
                    .position()
                    .map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX));
                if record.iter().all(|v| v.trim().is_empty()) {
                    continue;
                }
                // An empty id cell is no id: the case is named by its line.
                let map = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(k, v)| !(*k == "id" && v.trim().is_empty()))
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect();
                rows.push((line, map));
            }
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX));
                problems.at(line, format!("invalid CSV: {}", csv_message(&e)));
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
    rows
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this row has {len} fields, the header {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "a field is not UTF-8 text".to_string(),
        _ => strip_position(&e.to_string()),
    }
}

/// A YAML list of mappings.
fn yaml(text: &str, problems: &mut Problems<'_>) -> Vec<(u32, Map<String, Value>)> {
    let root = match node::parse(text) {
        Ok(n) => n,
        Err(e) => {
            problems.at_col(e.loc.line, e.loc.col, e.message);
            return Vec::new();
        }
    };
    let NodeKind::Seq(items) = &root.kind else {
        problems.at_col(
            root.loc.line.max(1),
            root.loc.col.max(1),
            format!(
                "a YAML dataset is a list of cases, found {}",
                root.describe()
            ),
        );
        return Vec::new();
    };
    let mut rows = Vec::new();
    for item in items {
        match item.to_json() {
            Value::Object(map) => rows.push((item.loc.line, map)),
            _ => problems.at_col(
                item.loc.line,
                item.loc.col,
                format!("a case is a mapping, found {}", Node::describe(item)),
            ),
        }
    }
    rows
}

/// A case from its fields: the id, the vars and the reference, or a problem at `line`.
fn case(line: u32, mut fields: Map<String, Value>, problems: &mut Problems<'_>) -> Option<Case> {
    let id = match fields.remove("id") {
        None | Some(Value::Null) => line.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        Some(Value::String(_)) => {
            problems.at(
                line,
                "a case id is empty (leave `id` out to name the case by its line)".to_string(),
            );
            return None;
        }
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(other) => {
            problems.at(
                line,
                format!(
                    "a case id is text or a whole number, found {}",
                    json_kind(&other)
                ),
            );
            return None;
        }
    };
    let (vars, reference) = match fields.remove("vars") {
        Some(Value::Object(vars)) => (vars, fields),
        Some(other) => {
            problems.at(
                line,
                format!(
                    "`vars` of case {id} is an object, found {}",
                    json_kind(&other)
                ),
            );
            return None;
        }
        None => {
            let vars = fields
                .iter()
                .filter(|(k, _)| k.as_str() != "expected")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (vars, fields)
        }
    };
    Some(Case {
        id,
        line,
        vars,
        reference,
    })
}

/// A parser's message without its own `at line L column C`: the diagnostic says where.
fn strip_position(message: &str) -> String {
    let cut = [" at line ", " (line "]
        .iter()
        .filter_map(|p| message.find(p))
        .min()
        .unwrap_or(message.len());
    message[..cut].to_string()
}

/// `sha256:` and the hex digest of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests;
