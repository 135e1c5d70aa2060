//! One self-contained HTML page for one or more traces, drawn by serve's own front-end: the
//! same waterfall, chat view, tool calls and detail pane as `agentrace serve` shows, from the
//! same modules (`src/serve/ui/`), with the traces embedded as data instead of fetched. Several
//! traces get a tab each; the traces of one conversation also a tab with its turns, as serve's
//! conversation page shows them. An experiment's report (`agentrace eval -o report.html`) is the
//! same kind of page: the experiment as serve's experiment page draws it, every case's trace a
//! click away ([`render_experiment`]).
//!
//! Nothing is fetched: the page (`ui/export.html`) gets the style sheet and the modules inline.
//! The modules that need no network are joined into one `<script type="module">` in the order
//! of [`TRACE_MODULES`] then [`MODULES`] (or [`EVAL_MODULES`]), each without its `import` lines and `export` keywords (they share one scope,
//! so their top-level names must differ; a test checks that, and that no module can end the
//! script element). The traces travel as the JSON document serve's `/api/traces/<id>` answers
//! (`trace::json`), in a `<script type="application/json">` block with `<`, `>`, `&` and the
//! JavaScript line separators escaped, so no name can close the block; the front-end builds
//! the page with DOM text nodes only, so a span named `<script>…` shows as text.
//!
//! When it has rendered, the page sets `data-rendered="N spans"` on `<body>`; a script error
//! sets `data-errors` and shows up in the `#errors` box (the headless-browser test reads both).

use serde_json::{Value, json};

use crate::trace::TraceDoc;
use crate::trace::json::trace_doc_json;

const TEMPLATE: &str = include_str!("../serve/ui/export.html");
const STYLE: &str = include_str!("../serve/ui/app.css");

/// The modules every page of this kind draws a trace with, each after the ones it imports.
const TRACE_MODULES: &[(&str, &str)] = &[
    ("format.js", include_str!("../serve/ui/format.js")),
    ("dom.js", include_str!("../serve/ui/dom.js")),
    ("shell.js", include_str!("../serve/ui/shell.js")),
    ("model.js", include_str!("../serve/ui/model.js")),
    ("detail.js", include_str!("../serve/ui/detail.js")),
    ("waterfall.js", include_str!("../serve/ui/waterfall.js")),
];

/// The rest of the export of traces, after [`TRACE_MODULES`]; `export.js` is the entry point.
const MODULES: &[(&str, &str)] = &[
    (
        "conversation.js",
        include_str!("../serve/ui/conversation.js"),
    ),
    ("export.js", include_str!("../serve/ui/export.js")),
];

/// The rest of an experiment's report (`agentrace eval -o report.html`), after
/// [`TRACE_MODULES`]: the experiment view; `eval_export.js` is the entry point.
const EVAL_MODULES: &[(&str, &str)] = &[
    (
        "experiment_view.js",
        include_str!("../serve/ui/experiment_view.js"),
    ),
    ("eval_export.js", include_str!("../serve/ui/eval_export.js")),
];

pub fn render(docs: &[TraceDoc]) -> String {
    let data = json!({ "traces": docs.iter().map(trace_doc_json).collect::<Vec<_>>() });
    let title = match docs {
        [one] => format!("{} — agentrace", one.trace.name),
        _ => format!("{} traces — agentrace", docs.len()),
    };
    fill(
        TEMPLATE,
        &[
            ("__TITLE__", &escape_html(&title)),
            ("__STYLE__", STYLE),
            ("__DATA__", &script_json(&data)),
            ("__SCRIPT__", &script(MODULES)),
        ],
    )
}

/// An experiment's report in one page: `report` is its JSON (`show EXPERIMENT --format json`),
/// drawn as serve's experiment page draws it, and every case opens its trace from `docs`.
pub fn render_experiment(title: &str, report: &Value, docs: &[TraceDoc]) -> String {
    let data = json!({
        "report": report,
        "traces": docs.iter().map(trace_doc_json).collect::<Vec<_>>(),
    });
    fill(
        TEMPLATE,
        &[
            ("__TITLE__", &escape_html(&format!("{title} — agentrace"))),
            ("__STYLE__", STYLE),
            ("__DATA__", &script_json(&data)),
            ("__SCRIPT__", &script(EVAL_MODULES)),
        ],
    )
}

/// The template with each placeholder, in order, replaced by its text. Split, not replaced: a
/// trace name may well contain a later placeholder.
fn fill(template: &str, parts: &[(&str, &str)]) -> String {
    let size = parts.iter().map(|(_, text)| text.len()).sum::<usize>();
    let mut page = String::with_capacity(template.len() + size);
    let mut rest = template;
    for (placeholder, text) in parts {
        let (head, tail) = rest.split_once(placeholder).unwrap_or((rest, ""));
        page.push_str(head);
        page.push_str(text);
        rest = tail;
    }
    page.push_str(rest);
    page
}

/// The modules as the body of one module script: imports dropped (everything is in scope),
/// `export` keywords dropped (nothing imports from an inline script).
fn script(modules: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (name, text) in TRACE_MODULES.iter().chain(modules) {
        out.push_str("// ---- ");
        out.push_str(name);
        out.push('\n');
        for line in text.lines().filter(|l| !l.starts_with("import ")) {
            out.push_str(line.strip_prefix("export ").unwrap_or(line));
            out.push('\n');
        }
    }
    out
}

/// JSON that can sit inside a `<script>` element: nothing in it can end the element or start a
/// comment, and it still parses to the same value.
fn script_json(v: &Value) -> String {
    let text = serde_json::to_string(v).unwrap_or_else(|_| "{\"traces\":[]}".into());
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let v = json!({"name": "</script><script>alert(1)</script> & <!-- \u{2028}"});
        let text = script_json(&v);
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        assert!(!text.contains('\u{2028}'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn the_pages_fetch_nothing() {
        let page = render(&[]);
        let report = render_experiment("<nightly>", &json!({"cases": []}), &[]);
        for needle in [
            "src=",
            "href=",
            "@import",
            "url(",
            "fetch(",
            "XMLHttpRequest",
            "http://",
            "https://",
            "__",
        ] {
            assert!(!page.contains(needle), "the page contains {needle}");
            assert!(!report.contains(needle), "the report contains {needle}");
        }
        assert!(page.contains("<title>0 traces — agentrace</title>"));
        assert!(report.contains("<title>&lt;nightly&gt; — agentrace</title>"));
    }

    /// The inlined code cannot end its element, and the joined modules, which share one scope,
    /// declare each top-level name once and import only what comes before them.
    #[test]
    fn the_inlined_modules_share_one_scope_safely() {
        assert!(!STYLE.to_ascii_lowercase().contains("</style"));
        let names = one_scope(MODULES);
        assert!(names.contains("traceView") && names.contains("h"));
        let names = one_scope(EVAL_MODULES);
        assert!(names.contains("drawExperiment") && names.contains("traceView"));
    }

    /// The top-level names the joined modules of a page ([`TRACE_MODULES`], then `entry`)
    /// declare, each once.
    fn one_scope(entry: &[(&str, &str)]) -> BTreeSet<String> {
        let modules: Vec<(&str, &str)> = TRACE_MODULES.iter().chain(entry).copied().collect();
        let lower = |s: &str| s.to_ascii_lowercase();
        let mut names = BTreeSet::new();
        for (i, (module, text)) in modules.iter().enumerate() {
            assert!(
                !lower(text).contains("</script") && !text.contains("<!--"),
                "{module}"
            );
            for line in text.lines() {
                if let Some(import) = line.strip_prefix("import ") {
                    let from = import
                        .rsplit_once("from './")
                        .and_then(|(_, rest)| rest.strip_suffix("';"))
                        .unwrap_or_else(|| panic!("{module}: an import on one line: {line}"));
                    assert!(
                        modules[..i].iter().any(|(n, _)| *n == from),
                        "{module} imports {from}, which is not inlined before it"
                    );
                    continue;
                }
                let decl = line.strip_prefix("export ").unwrap_or(line);
                let decl = decl.strip_prefix("async ").unwrap_or(decl);
                let ident = |s: &str| -> String {
                    s.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                        .collect()
                };
                let declared: Vec<String> = if let Some(rest) = decl
                    .strip_prefix("function ")
                    .or_else(|| decl.strip_prefix("class "))
                {
                    vec![ident(rest)]
                } else if let Some(rest) = decl
                    .strip_prefix("const ")
                    .or_else(|| decl.strip_prefix("let "))
                {
                    // `const A = 1, B = 2;` declares A and B; `(a, b) =>` declares nothing.
                    rest.split(", ")
                        .map(|part| (ident(part), part))
                        .filter(|(name, part)| part[name.len()..].starts_with(" ="))
                        .map(|(name, _)| name)
                        .collect()
                } else {
                    Vec::new()
                };
                for name in declared.into_iter().filter(|n| !n.is_empty()) {
                    assert!(names.insert(name.clone()), "{module}: {name} twice");
                }
            }
        }
        names
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape_html("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }
}
