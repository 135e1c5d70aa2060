//! The browser UI: one page, one script, one style sheet, all compiled into the binary. The
//! page routes on the client (`/`, `/traces/<id>`, `/groups/<g>`, `/diff?a=&b=`), so every GET
//! that is not an API or asset path answers with the page.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

pub async fn page(method: Method) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return super::error(StatusCode::NOT_FOUND, "no such route");
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
