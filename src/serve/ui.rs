//! The browser UI: one page, its style sheet and its native ES modules (`ui/*.js`, loaded from
//! `ui/index.html` through `<script type="module">`), all compiled into the binary and served
//! as they are: no bundler, nothing built at run time. The page routes on the client (`/`,
//! `/traces/<id>`, `/groups/<g>`, `/diff?a=&b=`, `/experiments…`), so every GET that is not an API or asset path
//! answers with the page; an asset path that names no file is a 404.
//!
//! The same modules draw the trace in `agentrace export --format html` (`export/html.rs`
//! inlines the ones that need no network), so serve and the export show a trace one way.

use axum::extract::Path;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("ui/index.html");
const STYLE: &str = include_str!("ui/app.css");

/// Every module the page may import, by the name it is imported as (`./dom.js` →
/// `/assets/dom.js`). A module missing here answers 404 and the page fails to load, which the
/// browser test sees.
const MODULES: &[(&str, &str)] = &[
    ("api.js", include_str!("ui/api.js")),
    ("conversation.js", include_str!("ui/conversation.js")),
    ("detail.js", include_str!("ui/detail.js")),
    ("diff.js", include_str!("ui/diff.js")),
    ("dom.js", include_str!("ui/dom.js")),
    ("experiment_view.js", include_str!("ui/experiment_view.js")),
    ("experiments.js", include_str!("ui/experiments.js")),
    ("format.js", include_str!("ui/format.js")),
    ("group.js", include_str!("ui/group.js")),
    ("list.js", include_str!("ui/list.js")),
    ("main.js", include_str!("ui/main.js")),
    ("model.js", include_str!("ui/model.js")),
    ("shell.js", include_str!("ui/shell.js")),
    ("trace.js", include_str!("ui/trace.js")),
    ("waterfall.js", include_str!("ui/waterfall.js")),
];

pub async fn page(method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return super::error(StatusCode::NOT_FOUND, "no such route");
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// `GET /assets/<file>`: the style sheet or one of the modules.
pub async fn asset(Path(file): Path<String>) -> Response {
    if file == "app.css" {
        return ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response();
    }
    match MODULES.iter().find(|(name, _)| *name == file) {
        Some((_, text)) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            *text,
        )
            .into_response(),
        None => super::error(StatusCode::NOT_FOUND, "no such asset"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `import … from './x.js'` in a module names a module that is served.
    #[test]
    fn every_imported_module_is_served() {
        for (name, text) in MODULES {
            assert!(
                text.starts_with("// @ts-check"),
                "{name} is not type-checked"
            );
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let from = line
                    .rsplit_once("from './")
                    .and_then(|(_, rest)| rest.strip_suffix("';"))
                    .unwrap_or_else(|| panic!("{name}: an import on one line: {line}"));
                assert!(
                    MODULES.iter().any(|(n, _)| *n == from),
                    "{name} imports {from}, which is not served"
                );
            }
        }
        assert!(PAGE.contains("<script type=\"module\" src=\"/assets/main.js\">"));
    }
}
