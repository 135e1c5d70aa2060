//! The layers of `src/` (shared/DESIGN.md, and the README's *Development*), checked on every
//! test run: which top-level module may import which. A new arrow that runs up, or a loop,
//! fails here with the file that made it, instead of being found in review; so does a loop
//! between two files of one module (`workflow/parse.rs` ↔ `workflow/validate.rs` was one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may import, besides itself. Leaves first.
const ALLOWED: &[(&str, &[&str])] = &[
    // The trace model and the small leaves everything may use.
    ("trace", &[]),
    ("query", &[]),
    ("causes", &[]),
    // Reading the inputs: workflow files, model APIs, payloads from other tools.
    ("workflow", &["trace", "query", "causes"]),
    ("llm", &["trace", "query", "causes"]),
    ("ingest", &["trace", "query", "causes"]),
    // What is done with traces: stored, rendered, exported. They read the trace model only
    // (the store also keeps sessions: llm's messages).
    ("store", &["trace", "query", "causes", "llm"]),
    ("render", &["trace", "query", "causes"]),
    ("export", &["trace", "query", "causes"]),
    // Evaluation reads datasets (with the workflow format's located YAML and diagnostics), and
    // reads experiments back from the store into render's report shapes for cli and serve.
    (
        "eval",
        &["trace", "query", "causes", "workflow", "store", "render"],
    ),
    // Pushing runs to a `serve` (AGENTRACE_REMOTE): a sink over the OTLP export, and a spool.
    ("remote", &["trace", "query", "causes", "export"]),
    // Running workflows: the engine never imports the store, render, export or cli.
    (
        "engine",
        &["trace", "query", "causes", "workflow", "llm", "error"],
    ),
    // The top: the one error enum wraps the module errors; serve and cli put things together.
    (
        "error",
        &[
            "trace", "query", "causes", "workflow", "llm", "store", "export", "ingest", "eval",
        ],
    ),
    (
        "serve",
        &[
            "trace", "query", "causes", "store", "ingest", "render", "export", "error", "eval",
        ],
    ),
    (
        "cli",
        &[
            "trace", "query", "causes", "workflow", "llm", "ingest", "store", "render", "export",
            "engine", "serve", "error", "eval", "remote",
        ],
    ),
    ("lib", &["cli", "error"]),
    ("main", &[]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files under `dir` that are not only tests.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    every_rust_file(dir, out);
    out.retain(|path| !is_tests(path));
}

/// Whether a file holds only tests (`tests.rs`, the property tests in `fuzz.rs`, anything
/// under a `tests/` folder).
fn is_tests(path: &Path) -> bool {
    let rel = path.strip_prefix(src()).unwrap_or(path);
    rel.file_stem().is_some_and(|s| s == "tests" || s == "fuzz")
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// The top-level module a file belongs to (`src/store/sqlite/query.rs` → `store`, `src/lib.rs` → `lib`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The code of a file without its unit tests (tests may reach across layers to set things up)
/// and without comments (a doc link is not a dependency).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names that follow `prefix` in `code`: `crate::store::X` gives `store`, and a group,
/// `super::{Diagnostic, validate}`, gives each of its members' first names.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        rest = &rest[i + prefix.len()..];
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for item in items {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// `crate::X` paths in `code`, X being a top-level module.
fn imports(code: &str) -> BTreeSet<String> {
    names_after(code, "crate::")
}

/// Every `module → imported module` edge, with the files that make it.
fn edges() -> BTreeMap<(String, String), Vec<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for file in files {
        let from = module_of(&file);
        for to in imports(&code_of(&file)) {
            if to != from {
                let rel = file.strip_prefix(src()).unwrap().display().to_string();
                edges.entry((from.clone(), to)).or_default().push(rel);
            }
        }
    }
    edges
}

#[test]
fn every_import_between_modules_follows_the_layers() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for ((from, to), files) in edges() {
        let Some(may) = allowed.get(from.as_str()) else {
            wrong.push(format!(
                "{from} is not in ALLOWED (a new module? place it in a layer)"
            ));
            continue;
        };
        if !may.contains(&to.as_str()) {
            wrong.push(format!("{from} → {to}, in {}", files.join(", ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let edges = edges();
    let set: BTreeSet<(String, String)> = edges.keys().cloned().collect();
    let loops: Vec<String> = set
        .iter()
        .filter(|(a, b)| a < b && set.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| format!("{a} ↔ {b}"))
        .collect();
    assert!(loops.is_empty(), "import loops: {}", loops.join(", "));
}

/// `(file, sibling file)` for every file that names a sibling (`super::validate`,
/// `crate::workflow::validate`), at every level of folders: `store/sqlite/query.rs` ↔
/// `store/sqlite/writer.rs` is a pair of siblings, and so is the folder `workflow/parse` (all its
/// files, which reach the module's other files through `super::super::`) ↔ `workflow/validate`.
fn sibling_edges() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(src()).unwrap();
        // The file's module path: `a/b/mod.rs` is module `a::b`, `a/b/c.rs` is `a::b::c`.
        let mut path: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        if path.last().is_some_and(|n| n == "mod") {
            path.pop();
        }
        let code = code_of(file);
        // At each level below the crate's modules: the folder, and which of its children holds
        // this file.
        for level in 1..path.len() {
            let folder = &path[..level];
            let unit = &path[level];
            let dir = folder.join("/");
            let up = "super::".repeat(path.len() - level);
            for prefix in [up, format!("crate::{}::", folder.join("::"))] {
                for other in names_after(&code, &prefix) {
                    let sibling = src().join(&dir).join(format!("{other}.rs"));
                    let nested = src().join(&dir).join(&other).join("mod.rs");
                    if other != *unit && (sibling.exists() || nested.exists()) {
                        edges.insert((format!("{dir}/{unit}"), format!("{dir}/{other}")));
                    }
                }
            }
        }
    }
    edges
}

#[test]
fn no_file_imports_a_sibling_that_imports_it() {
    let edges = sibling_edges();
    assert!(
        edges.contains(&(
            "workflow/validate".to_string(),
            "workflow/diagnostic".to_string()
        )),
        "the check sees sibling imports: {edges:?}"
    );
    assert!(
        edges.contains(&("workflow/parse".to_string(), "workflow/schema".to_string())),
        "the check sees the imports of a sibling split into a folder: {edges:?}"
    );
    let loops: Vec<String> = edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| format!("{a} ↔ {b}"))
        .collect();
    assert!(
        loops.is_empty(),
        "import loops between files: {}",
        loops.join(", ")
    );
}

/// The store's backends keep their SQL to themselves (shared/DESIGN.md): only the files of
/// `src/store/sqlite/`, tests included, may name `rusqlite`, and only those of
/// `src/store/postgres/` the PostgreSQL driver (`postgres::`, `tokio_postgres`), so that the
/// commands, and the rest of the store, are the same on both backends.
#[test]
fn each_backend_alone_imports_its_driver() {
    // The crate `postgres::…` is named at the start of a path; the store's own module of that
    // name is reached as `self::postgres::…` or `store::postgres::…`.
    let names_postgres = |line: &str| {
        line.contains("tokio_postgres")
            || line.match_indices("postgres::").any(|(i, _)| {
                line[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !(c == ':' || c == '_' || c.is_alphanumeric()))
            })
    };
    let driver_of = |line: &str, driver: &str| match driver {
        "rusqlite" => line.contains("rusqlite"),
        _ => names_postgres(line),
    };
    for (driver, folder) in [("rusqlite", "sqlite"), ("postgres", "postgres")] {
        let mut files = Vec::new();
        every_rust_file(&src(), &mut files);
        let backend = src().join("store").join(folder);
        let mut seen = false;
        let mut wrong = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let names = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .any(|line| driver_of(line, driver));
            if file.starts_with(&backend) {
                seen |= names;
            } else if names {
                wrong.push(file.strip_prefix(src()).unwrap().display().to_string());
            }
        }
        assert!(seen, "the check sees the {folder} backend's imports");
        assert!(
            wrong.is_empty(),
            "{driver} outside src/store/{folder}/: {}",
            wrong.join(", ")
        );
    }
}

/// Every `.rs` file under `dir`, tests included.
fn every_rust_file(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            every_rust_file(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
