//! The JSON API: the same shapes as the CLI's `--format json` (docs/contract.md#json-shapes), so
//! a script can switch between `agentrace list --format json` and `GET /api/traces` without
//! changing its parser.
//!
//! | route | CLI equivalent |
//! |---|---|
//! | `GET /api/traces?workflow=&group=&status=&meta=K=V&search=&since=&from=&until=&limit=&cursor=` | `list --format json`, a page at a time (`Link: rel="next"`) |
//! | `GET /api/traces/{id}` (full id, unique prefix or suffix, or `last`) | `show ID --format json` |
//! | `GET /api/groups/{group}` | `show --group G --format json` |
//! | `GET /api/diff?a=&b=[&content=true]` | `diff A B --format json` |
//! | `GET /api/experiments[?limit=]` | `list --experiments --format json` |
//! | `GET /api/experiments/{ref}` (id, id prefix or name) | `show EXPERIMENT --format json` |
//! | `GET /api/compare?a=&b=` | `eval compare A B --format json` |
//! | `GET /api/events` | (server-sent events: `change` on every store change) |

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, error, query_pairs as pairs, with_store};
use crate::eval::{pairing, report};
use crate::render;
use crate::render::diff::TraceDiff;
use crate::store::ListFilter;

/// The most traces one list request returns.
const MAX_LIMIT: usize = 5000;

fn json_response(value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The list filter from a query string (see [`ListFilter::from_pairs`]): a page of at most 100
/// traces unless `limit` says otherwise, and never more than [`MAX_LIMIT`] (the `Link` header
/// names the next page).
fn list_filter(query: Option<&str>) -> Result<ListFilter, String> {
    let mut filter = ListFilter::from_pairs(pairs(query))?;
    filter.limit = Some(filter.limit.map_or(100, |n| n.clamp(1, MAX_LIMIT)));
    Ok(filter)
}

/// The URL of the page after `last`: the same query with its cursor.
fn next_page(query: Option<&str>, last: &crate::trace::Trace) -> String {
    let kept: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("cursor="))
        .map(str::to_string)
        .collect();
    let mut url = String::from("/api/traces?");
    for p in &kept {
        url.push_str(p);
        url.push('&');
    }
    url.push_str("cursor=");
    url.push_str(&crate::store::filter::cursor_of(last));
    url
}

/// `GET /api/traces`: a page of the list, newest first. When more rows match, the answer has
/// a `Link: <…&cursor=…>; rel="next"` header (and `X-Next-Cursor`), so a client reads every row
/// page by page instead of being capped without a word.
pub async fn traces(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let mut filter = match list_filter(query.as_deref()) {
        Ok(filter) => filter,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let page = filter.limit.unwrap_or(MAX_LIMIT);
    // One row more than the page says whether there is a next page.
    filter.limit = Some(page + 1);
    match with_store(&app, move |store| store.list(&filter)).await {
        Ok(mut traces) => {
            let more = traces.len() > page;
            traces.truncate(page);
            let mut response = json_response(&Value::Array(
                traces.iter().map(render::json::summary_json).collect(),
            ));
            if let (true, Some(last)) = (more, traces.last()) {
                let next = next_page(query.as_deref(), last);
                let cursor = crate::store::filter::cursor_of(last);
                let headers = response.headers_mut();
                if let Ok(v) = header::HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
                    headers.insert(header::LINK, v);
                }
                if let Ok(v) = header::HeaderValue::from_str(&cursor) {
                    headers.insert("x-next-cursor", v);
                }
            }
            response
        }
        Err(response) => response,
    }
}

/// `GET /api/traces/{id}`
pub async fn trace(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    match with_store(&app, move |store| store.find(&id)).await {
        Ok(doc) => json_response(&render::json::trace_doc_json(&doc)),
        Err(response) => response,
    }
}

/// `GET /api/groups/{group}`: the conversation's traces in start order.
pub async fn group(State(app): State<Shared>, Path(group): Path<String>) -> Response {
    let docs = with_store(&app, move |store| store.load_group(&group)).await;
    match docs {
        Ok(docs) => json_response(&Value::Array(
            docs.iter().map(render::json::trace_doc_json).collect(),
        )),
        Err(response) => response,
    }
}

/// `GET /api/diff?a=ID&b=ID[&content=true]`
pub async fn diff(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (mut a, mut b, mut content) = (None, None, false);
    for (key, value) in pairs(query.as_deref()) {
        match key.as_str() {
            "a" => a = Some(value),
            "b" => b = Some(value),
            "content" => content = matches!(value.as_str(), "" | "1" | "true" | "yes"),
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?}: use a, b and content"),
                );
            }
        }
    }
    let (Some(a), Some(b)) = (a, b) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give the two traces to compare: /api/diff?a=ID&b=ID",
        );
    };
    let docs = with_store(&app, move |store| Ok((store.find(&a)?, store.find(&b)?))).await;
    match docs {
        Ok((a, b)) => json_response(&render::diff::diff_json(&TraceDiff::new(&a, &b, content))),
        Err(response) => response,
    }
}

/// `GET /api/experiments[?limit=N]`: newest first, at most 100 unless `limit` says otherwise
/// (never more than [`MAX_LIMIT`]).
pub async fn experiments(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let mut limit = 100;
    for (key, value) in pairs(query.as_deref()) {
        match (key.as_str(), value.parse::<usize>()) {
            ("limit", Ok(n)) => limit = n.clamp(1, MAX_LIMIT),
            ("limit", Err(_)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("limit {value:?} is not a number"),
                );
            }
            (other, _) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?}: use limit"),
                );
            }
        }
    }
    match with_store(&app, move |store| store.experiments()).await {
        Ok(list) => json_response(&Value::Array(
            list.iter()
                .take(limit)
                .map(|e| render::eval::experiment_json(&report::stored_info(e)))
                .collect(),
        )),
        Err(response) => response,
    }
}

/// `GET /api/experiments/{ref}`: the experiment's report, its cases with their scores.
pub async fn experiment(State(app): State<Shared>, Path(reference): Path<String>) -> Response {
    let found = with_store(&app, move |store| {
        let e = store.find_experiment(&reference)?;
        report::stored_report(store, &e)
    })
    .await;
    match found {
        Ok((info, results)) => json_response(&render::eval::report_json(&info, &results)),
        Err(response) => response,
    }
}

/// `GET /api/compare?a=EXPERIMENT&b=EXPERIMENT`: B against the baseline A, per scorer, and the
/// cases that changed.
pub async fn compare(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let (mut a, mut b) = (None, None);
    for (key, value) in pairs(query.as_deref()) {
        match key.as_str() {
            "a" => a = Some(value),
            "b" => b = Some(value),
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown parameter {other:?}: use a and b"),
                );
            }
        }
    }
    let (Some(a), Some(b)) = (a, b) else {
        return error(
            StatusCode::BAD_REQUEST,
            "give the two experiments to compare: /api/compare?a=BASELINE&b=EXPERIMENT",
        );
    };
    let compared = with_store(&app, move |store| {
        let a = store.find_experiment(&a)?;
        let b = store.find_experiment(&b)?;
        let (rows, changes) = pairing::compare(store, &a, &b)?;
        Ok(render::eval_compare::compare_json(
            &a.id, &b.id, &rows, &changes,
        ))
    })
    .await;
    match compared {
        Ok(value) => json_response(&value),
        Err(response) => response,
    }
}

/// `GET /api/events`: `event: change` with `{"version": N}` now and after every change to the
/// store, `: ping` every 15 s; ends when the server shuts down.
pub async fn events(State(app): State<Shared>) -> impl IntoResponse {
    let rx = app.changes.clone();
    let shutdown = app.shutdown.clone();
    let stream = futures::stream::unfold(
        (rx, shutdown, true),
        |(mut rx, shutdown, first)| async move {
            if !first {
                tokio::select! {
                    changed = rx.changed() => changed.ok()?,
                    () = shutdown.cancelled() => return None,
                }
            }
            let version = *rx.borrow_and_update();
            let event = Event::default()
                .event("change")
                .data(json!({ "version": version }).to_string());
            Some((Ok::<_, Infallible>(event), (rx, shutdown, false)))
        },
    );
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("ping"),
    )
}

/// Any other `/api/` path.
pub async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such API route: see /api/traces, /api/traces/{id}, /api/groups/{group}, \
         /api/diff?a=&b=, /api/experiments, /api/experiments/{ref}, /api/compare?a=&b=, /api/events",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Status;

    #[test]
    fn list_filters_come_from_the_query_string() {
        let f = list_filter(Some(
            "workflow=Support+Flow&status=error&meta=tier%3Dgold&meta=region=eu&limit=7\
             &from=2026-11-24T00:00:00Z&until=2026-11-25T00:00:00Z&search=&offline=false",
        ))
        .unwrap();
        assert_eq!(f.workflow.as_deref(), Some("Support Flow"));
        assert_eq!(f.offline, Some(false));
        assert_eq!(
            list_filter(Some("offline=true")).unwrap().offline,
            Some(true)
        );
        assert_eq!(f.status, Some(Status::Error));
        assert_eq!(
            f.meta,
            vec![
                ("tier".into(), "gold".into()),
                ("region".into(), "eu".into())
            ]
        );
        assert_eq!(f.limit, Some(7));
        assert!(f.since.unwrap() < f.until.unwrap());
        assert_eq!(f.search, None, "an empty search is no filter");
        assert_eq!(list_filter(None).unwrap().limit, Some(100));
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        for (query, says) in [
            ("status=great", "unknown status"),
            ("meta=novalue", "KEY=VALUE"),
            ("since=soon", "invalid duration"),
            ("from=yesterday", "RFC 3339"),
            ("limit=many", "not a number"),
            ("offline=yes", "offline: expected true or false"),
            ("wokflow=x", "unknown parameter \"wokflow\""),
            (
                "meta=k=v&".repeat(33).as_str(),
                "too many metadata filters (33): at most 32",
            ),
            (
                format!("search={}", "w+".repeat(33)).as_str(),
                "too many search words (33): at most 32",
            ),
        ] {
            let e = list_filter(Some(query)).unwrap_err();
            assert!(e.contains(says), "{query}: {e}");
        }
    }
}
