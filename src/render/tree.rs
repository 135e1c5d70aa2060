//! The trace as a tree with a waterfall: what `show` prints and what `run` prints when it is
//! done.
//!
//! ```text
//! Customer Support - Initial Inquiry  ok  812.4ms  460 tokens
//!   trace_0192abcd000000000000000000000042
//!   workflow Customer Support · group conv_12345
//!   customer_id=cust_789 priority=high
//!                                                         0      406.2ms      812.4ms
//! ├─ custom  Order Validation  ok  12.3ms                 █·······················
//! │  • Validation started  order_id=ORD-1                 •
//! │  ├─ command  Inventory Check  ok  5.1ms  exit 0       █·······················
//! │  └─ agent  researcher  ok  200.1ms  120→340 tokens    ██████··················
//! │     └─ generation  gpt-4o-mini  ok  199.8ms  120→34…  ██████··················
//! └─ command  notify  error  3.0ms  exit 1               *·········█··············
//!    ✗ command exited with status 1: connection refused
//! ```
//!
//! The name leads the header and the id has a line of its own: a 38-character id first would
//! leave a typical name truncated at 80 columns, and on its own line the id is easy to copy.
//! Names and bars share the width (see [`Layout`]); every line is fitted to it by characters:
//! names shrink first, then the least important fields at the end of the line go. `*` marks the
//! critical path: the spans whose end decides when the trace ends.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::content::{ContentView, content_lines};
use super::line::{Line, clean};
use super::theme::{Style, Theme};
use super::waterfall::{Axis, Layout, critical_path};
use super::{human_duration, width_of};
use crate::trace::bound::truncate;
use crate::trace::model::META_OFFLINE;
use crate::trace::{
    DID_NOT_FINISH, Score, Span, SpanId, SpanKind, Status, Timestamp, TraceDoc, TraceId,
};

/// The shortest a name is cut to before fields at the end of its line are dropped instead.
const NAME_MIN: usize = 12;
/// The longest an event attribute or metadata value is shown.
const VALUE_MAX: usize = 40;

/// What the tree shows besides the spans themselves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeOptions {
    /// Spans deeper than this (top-level spans are at depth 1) are hidden and counted.
    pub depth: Option<usize>,
    /// Inputs and outputs under each span, wrapped: what is new in each model call, each
    /// message cut to a few lines.
    pub content: bool,
    /// With `content`: every message of each model call, uncut.
    pub full: bool,
    /// Span events as lines of their own.
    pub events: bool,
    /// The short ids (see `Store::short_id`) to print beside the full ones in the header.
    pub short_ids: HashMap<TraceId, String>,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            depth: None,
            content: false,
            full: false,
            events: true,
            short_ids: HashMap::new(),
        }
    }
}

/// Renders `doc` as a tree no wider than `width` characters, coloured when `theme.color`.
pub fn tree(doc: &TraceDoc, theme: &Theme, width: usize) -> String {
    tree_with(doc, theme, width, &TreeOptions::default())
}

/// [`tree`] with options.
pub fn tree_with(doc: &TraceDoc, theme: &Theme, width: usize, opts: &TreeOptions) -> String {
    let layout = Layout::for_width(width);
    let axis = Axis::of(doc);
    let critical = if layout.bars() {
        critical_path(doc, &axis)
    } else {
        HashSet::new()
    };
    let short = opts.short_ids.get(&doc.trace.trace_id).map(String::as_str);
    let mut lines: Vec<Line> = header(doc, width, short)
        .into_iter()
        .map(|l| l.fit(width))
        .collect();
    if layout.bars() && !doc.spans.is_empty() {
        lines.push(
            Line::default()
                .pad(layout.name + 2)
                .append(axis.scale(layout.bar))
                .trim_end(),
        );
    }
    let spans = &doc.spans;
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_id {
            Some(p) if ids.contains(&p) && p != span.span_id => {
                children.entry(p).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    // The model calls after the first of their agent run (their parent's later generation
    // children): what is new in them starts after the previous reply.
    let later_calls: HashSet<usize> = children
        .values()
        .chain([&roots])
        .flat_map(|kids| {
            kids.iter()
                .copied()
                .filter(|&i| spans[i].kind == SpanKind::Generation)
                .skip(1)
        })
        .collect();
    // Depth-first with an explicit stack: a store could hold a very deep (or damaged) tree.
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<Entry> = Vec::new();
    push_siblings(&mut stack, &roots, "", 1);
    while let Some(Entry {
        index,
        prefix,
        last,
        depth,
    }) = stack.pop()
    {
        let (Some(span), Some(seen)) = (spans.get(index), seen.get_mut(index)) else {
            continue;
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        let connector = if last { "└─ " } else { "├─ " };
        let inner = format!("{prefix}{}", if last { "   " } else { "│  " });
        let kids = children
            .get(&span.span_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let shown_kids = opts.depth.is_none_or(|max| depth < max) && !kids.is_empty();
        let on_path = critical.contains(&span.span_id);
        let left = span_line(span, &format!("{prefix}{connector}"), on_path);
        lines.push(if layout.bars() {
            let (mark, style) = if on_path {
                ("*", Style::Bold)
            } else {
                (" ", Style::Plain)
            };
            left.fit(layout.name - 1)
                .pad(layout.name)
                .text(mark, style)
                .text(" ", Style::Plain)
                .append(axis.bar(span, layout.bar))
        } else {
            left.fit(width)
        });
        if opts.events {
            for event in &span.events {
                let left = match Score::from_event(event) {
                    Some(score) => score_line(&inner, &score),
                    None => Line::default()
                        .text(&inner, Style::Muted)
                        .text("• ", Style::Muted)
                        .flex(&clean(&event.name), Style::Plain, NAME_MIN)
                        .field_flex(&attributes_text(&event.attributes), Style::Muted),
                };
                lines.push(if layout.bars() {
                    left.fit(layout.name - 1)
                        .pad(layout.name + 2)
                        .append(axis.event_mark(event.time, layout.bar))
                } else {
                    left.fit(width)
                });
            }
        }
        if let Some(error) = &span.error
            && span.status != Status::Ok
            && !span.did_not_finish()
        {
            lines.push(error_line(&inner, &error.message).fit(width));
        }
        if opts.content {
            let rail = if shown_kids { "│ " } else { "  " };
            let view = ContentView {
                full: opts.full,
                later_call: later_calls.contains(&index),
            };
            lines.extend(content_lines(span, view, &format!("{inner}{rail}"), width));
        }
        if shown_kids {
            push_siblings(&mut stack, kids, &inner, depth + 1);
        } else if !kids.is_empty() {
            let all = descendants(kids, spans, &children);
            lines.push(hidden_line(&inner, kids.len(), all).fit(width));
        }
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.paint(theme));
        out.push('\n');
    }
    out
}

/// A span still to print, with the tree drawing that leads to it.
struct Entry {
    index: usize,
    prefix: String,
    last: bool,
    depth: usize,
}

fn push_siblings(stack: &mut Vec<Entry>, kids: &[usize], prefix: &str, depth: usize) {
    for (n, &index) in kids.iter().enumerate().rev() {
        stack.push(Entry {
            index,
            prefix: prefix.to_string(),
            last: n + 1 == kids.len(),
            depth,
        });
    }
}

/// How many spans lie below the spans at `kids`, themselves included.
fn descendants(kids: &[usize], spans: &[Span], children: &HashMap<SpanId, Vec<usize>>) -> usize {
    let mut seen = vec![false; spans.len()];
    let mut todo = kids.to_vec();
    let mut count = 0;
    while let Some(i) = todo.pop() {
        let (Some(span), Some(seen)) = (spans.get(i), seen.get_mut(i)) else {
            continue;
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        count += 1;
        todo.extend(children.get(&span.span_id).into_iter().flatten());
    }
    count
}

/// The name and totals, then the id: the short one to type first (when known), then the full
/// one when the width has room for both.
fn header(doc: &TraceDoc, width: usize, short: Option<&str>) -> Vec<Line> {
    let t = &doc.trace;
    let mut first = Line::default()
        .flex(&clean(&t.name), Style::Bold, NAME_MIN)
        .field(t.status.as_str(), Style::Status(t.status));
    let unfinished = t
        .error
        .as_ref()
        .is_some_and(|e| e.message.starts_with(DID_NOT_FINISH));
    if let Some(ms) = t.duration_ms() {
        let shown = human_duration(ms);
        first = first.field(
            &if unfinished {
                format!("≥{shown}")
            } else {
                shown
            },
            Style::Plain,
        );
    }
    if !t.usage.is_zero() {
        first = first.field(&format!("{} tokens", t.usage.total_tokens), Style::Plain);
    }
    // An offline run's cost is zero by construction: say why instead.
    if t.is_offline() {
        first = first.field("offline", Style::Muted);
    } else if t.cost_usd.is_some() {
        first = first.field(&super::cost(t.cost_usd), Style::Plain);
    }
    let full = t.trace_id.to_string();
    let id = match short {
        Some(short) if short != full && 2 + width_of(short) + 3 + full.len() <= width => {
            format!("{short} · {full}")
        }
        Some(short) => short.to_string(),
        None => full,
    };
    let mut lines = vec![
        first,
        Line::default()
            .text("  ", Style::Plain)
            .text(&id, Style::Plain),
    ];
    let mut about = Vec::new();
    if t.workflow != t.name {
        about.push(format!("workflow {}", clean(&t.workflow)));
    }
    if let Some(group) = &t.group_id {
        about.push(format!("group {}", clean(group)));
    }
    // The offline mark is on the first line already.
    let mut metadata = t.metadata.clone();
    metadata.remove(META_OFFLINE);
    if !metadata.is_empty() {
        about.push(attributes_text(&metadata));
    }
    // Packed onto as few lines as the width allows; a piece too long for a line is cut.
    let mut packed: Vec<String> = Vec::new();
    for piece in about {
        match packed.last_mut() {
            Some(last) if 2 + width_of(last) + 3 + width_of(&piece) <= width => {
                last.push_str(" · ");
                last.push_str(&piece);
            }
            _ => packed.push(piece),
        }
    }
    for text in packed {
        lines.push(
            Line::default()
                .text("  ", Style::Plain)
                .flex(&text, Style::Muted, 1),
        );
    }
    // A trace's own error usually repeats the failed span's; show it when it says something
    // the spans cannot (a run that died, a failure outside any span).
    if let Some(error) = &t.error {
        let said_by_a_span = doc.spans.iter().any(|s| s.error.is_some());
        if error.message.starts_with(DID_NOT_FINISH) || !said_by_a_span {
            lines.push(error_line("  ", &error.message));
        }
    }
    lines
}

fn span_line(span: &Span, prefix: &str, on_path: bool) -> Line {
    let a = &span.attributes;
    let mut line = Line::default()
        .text(prefix, Style::Muted)
        .text(span.kind.as_str(), Style::Muted)
        .text("  ", Style::Plain)
        .flex(
            &clean(&span.name),
            if on_path { Style::Bold } else { Style::Plain },
            NAME_MIN,
        );
    // A span whose run died while it was open says so, with the time known to have elapsed
    // (until the run's last record): at least that long, not that long.
    let (status, at_least) = if span.did_not_finish() {
        (DID_NOT_FINISH, "≥")
    } else {
        (span.status.as_str(), "")
    };
    line = line.field(status, Style::Status(span.status));
    if let Some(ms) = span.duration_ms() {
        line = line.field(&format!("{at_least}{}", human_duration(ms)), Style::Plain);
    }
    if span.kind == SpanKind::Command
        && let Some(code) = a.get("exit_code").and_then(Value::as_i64)
    {
        line = line.field(&format!("exit {code}"), Style::Plain);
    }
    if span.kind == SpanKind::Generation
        && let Some(model) = a.get("model").and_then(Value::as_str)
        && model != span.name
    {
        line = line.field(&clean(model), Style::Muted);
    }
    // A server's tool count (none for one that failed before it listed any), and whether the
    // list came from the run's cache.
    if span.kind == SpanKind::McpTools {
        let tools = span.mcp_tool_names().len();
        let mut what = match tools {
            0 if span.status == Status::Error => String::new(),
            1 => "1 tool".to_string(),
            n => format!("{n} tools"),
        };
        if span.mcp_cached() {
            what.push_str(if what.is_empty() {
                "cached"
            } else {
                " · cached"
            });
        }
        line = line.field(&what, Style::Muted);
    }
    // A call that went to an MCP server says which.
    if span.kind == SpanKind::Function
        && let Some(server) = span.mcp_server()
    {
        line = line.field(&format!("mcp {}", clean(server)), Style::Muted);
    }
    if let Some(usage) = span.usage() {
        line = line.field(
            &format!("{}→{} tokens", usage.input_tokens, usage.output_tokens),
            Style::Plain,
        );
    }
    if a.get("offline") == Some(&Value::Bool(true)) {
        line = line.field("offline", Style::Muted);
    }
    if span.status == Status::Skipped
        && let Some(reason) = a.get("skip_reason").and_then(Value::as_str)
    {
        line = line.field_flex(&clean(reason), Style::Muted);
    }
    line
}

fn error_line(prefix: &str, message: &str) -> Line {
    let first = message.lines().next().unwrap_or_default();
    Line::default()
        .text(prefix, Style::Muted)
        .text("✗ ", Style::Error)
        .flex(&clean(first), Style::Error, 1)
}

/// `k=v k=v`: values as compact JSON, strings without quotes, long values cut.
fn attributes_text(attributes: &Map<String, Value>) -> String {
    attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={}", clean(k), truncate(&clean(&v), VALUE_MAX))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A score as a line of its span: `◆ correct  0.75  mostly right  pass  misses the date`, the
/// verdict coloured, the explanation (or the error) last, where it is cut first.
fn score_line(prefix: &str, score: &Score) -> Line {
    let mut line = Line::default()
        .text(prefix, Style::Muted)
        .text("◆ ", Style::Muted)
        .flex(&clean(&score.name), Style::Bold, NAME_MIN);
    if let Some(value) = score.value {
        line = line.field(&format_score(value), Style::Plain);
    }
    if let Some(label) = &score.label {
        line = line.field(&truncate(&clean(label), VALUE_MAX), Style::Plain);
    }
    let verdict = match (&score.error, score.passed) {
        (Some(_), _) => Some(("error", Style::Status(Status::Error))),
        (None, Some(true)) => Some(("pass", Style::Status(Status::Ok))),
        (None, Some(false)) => Some(("fail", Style::Status(Status::Error))),
        (None, None) => None,
    };
    if let Some((word, style)) = verdict {
        line = line.field(word, style);
    }
    let why = score.error.as_deref().or(score.explanation.as_deref());
    match why {
        Some(why) => line.field_flex(&clean(why), Style::Muted),
        None => line,
    }
}

/// A score's value as people write it: `1`, `0.75`, `4.5`, at most 4 decimals.
fn format_score(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// `… 3 hidden` (and how many spans that is in all) where `--depth` cut the tree.
fn hidden_line(prefix: &str, kids: usize, all: usize) -> Line {
    let noun = if kids == 1 { "child" } else { "children" };
    let mut text = format!("… {kids} {noun} hidden");
    if all > kids {
        text.push_str(&format!(" ({all} spans)"));
    }
    Line::default()
        .text(prefix, Style::Muted)
        .text("└─ ", Style::Muted)
        .flex(&text, Style::Muted, 1)
}

/// A conversation: its traces in start order, each as [`tree_with`] draws it, with the time
/// that passed between one trace's end and the next one's start.
pub fn group(docs: &[TraceDoc], theme: &Theme, width: usize, opts: &TreeOptions) -> String {
    let mut docs: Vec<&TraceDoc> = docs.iter().collect();
    docs.sort_by_key(|d| d.trace.started_at);
    let mut out = String::new();
    let mut previous_end: Option<Timestamp> = None;
    for doc in docs {
        if let Some(end) = previous_end {
            let ms = end.ms_until(doc.trace.started_at);
            let text = if ms >= 0.0 {
                format!("… {} later …", spaced_duration(ms))
            } else {
                format!(
                    "… started {} before the previous one ended …",
                    spaced_duration(-ms)
                )
            };
            let line = Line::default()
                .text("  ", Style::Plain)
                .flex(&text, Style::Muted, 1)
                .fit(width);
            out.push('\n');
            out.push_str(&line.paint(theme));
            out.push_str("\n\n");
        }
        out.push_str(&tree_with(doc, theme, width, opts));
        previous_end = Some(Axis::of(doc).end());
    }
    out
}

/// A gap for people, with spaces between units: `120ms`, `4.2s`, `3m 12s`, `2h 05m`.
fn spaced_duration(ms: f64) -> String {
    let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
    if ms < 999.5 {
        format!("{ms:.0}ms")
    } else if ms < 59_950.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        let secs = (ms / 1000.0).round() as u64;
        if secs < 3600 {
            format!("{}m {:02}s", secs / 60, secs % 60)
        } else {
            format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_doc;
    use crate::trace::{ErrorInfo, Timestamp};

    fn plain(doc: &TraceDoc, width: usize, opts: TreeOptions) -> String {
        tree_with(doc, &Theme::plain(), width, &opts)
    }

    #[test]
    fn a_small_trace_reads_as_a_waterfall_at_80_columns() {
        let out = tree(&sample_doc(), &Theme::plain(), 80);
        insta::assert_snapshot!(out);
    }

    #[test]
    fn wider_terminals_get_longer_names_and_bars() {
        let out = tree(&sample_doc(), &Theme::plain(), 120);
        insta::assert_snapshot!(out);
    }

    #[test]
    fn sixty_columns_keep_short_bars_and_fewer_do_without() {
        let out = tree(&sample_doc(), &Theme::plain(), 60);
        insta::assert_snapshot!(out);
        let out = tree(&sample_doc(), &Theme::plain(), 59);
        insta::assert_snapshot!(out);
    }

    #[test]
    fn no_line_exceeds_the_width() {
        let mut doc = sample_doc();
        let long = "A very long name that goes on and on ".repeat(5);
        doc.trace.name = long.clone();
        doc.trace
            .metadata
            .insert("note".into(), Value::String(long.clone()));
        for span in &mut doc.spans {
            span.name = long.clone();
            span.attributes
                .insert("output".into(), Value::String(long.repeat(10)));
        }
        doc.spans[0].events[0]
            .attributes
            .insert("big".into(), serde_json::json!({"k": long}));
        doc.spans[4].error = Some(ErrorInfo::new(long.clone()));
        let opts = TreeOptions {
            content: true,
            ..TreeOptions::default()
        };
        for width in [200, 120, 80, 60, 59, 40, 20] {
            for color in [false, true] {
                let out = tree_with(&doc, &Theme { color }, width, &opts);
                let plain = plain(&doc, width, opts.clone());
                assert_eq!(out.lines().count(), plain.lines().count());
                for line in plain.lines() {
                    assert!(width_of(line) <= width, "{width}: {line:?}");
                    assert_eq!(line.trim_end(), line, "{width}: trailing spaces");
                }
                assert!(plain.contains("…"));
            }
        }
        let out = tree(&doc, &Theme::plain(), 80);
        assert!(
            out.contains(
                "\n├─ custom  A very long name that goes on and…  ok  12.3ms   █···················\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "\n│     └─ generation  A very long…  ok  199.8ms              ██████··············\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_dead_run_says_it_did_not_finish_and_colour_is_optional() {
        let mut doc = sample_doc();
        doc.trace.status = Status::Error;
        doc.trace.ended_at = None;
        doc.trace.error = Some(ErrorInfo::new(
            "did not finish: the run (pid 42) ended without closing its trace",
        ));
        doc.spans[1].status = Status::Skipped;
        doc.spans[1]
            .attributes
            .insert("skip_reason".into(), "an earlier step failed".into());
        doc.spans[2].ended_at = None;
        doc.spans[2].status = Status::Running;
        doc.spans[4].status = Status::Cancelled;
        let plain = tree(&doc, &Theme::plain(), 120);
        assert!(
            plain.contains(
                "\n  ✗ did not finish: the run (pid 42) ended without closing its trace\n"
            ),
            "{plain}"
        );
        assert!(
            plain.contains(
                "│  ├─ command  Inventory Check  skipped  5.1ms  exit 0  an earlier step failed "
            ),
            "{plain}"
        );
        // A span that never ended runs to the end of the axis (here the last recorded time).
        assert!(
            plain.contains("│  └─ agent  researcher  running  120→340 tokens "),
            "{plain}"
        );
        let agent = plain
            .lines()
            .find(|l| l.contains("agent  researcher"))
            .unwrap();
        assert!(agent.ends_with(&format!("  {}", "░".repeat(30))), "{agent}");
        let skipped = plain
            .lines()
            .find(|l| l.contains("Inventory Check"))
            .unwrap();
        assert!(
            skipped.ends_with("  -·····························"),
            "{skipped}"
        );
        let notify = plain.lines().find(|l| l.contains("notify")).unwrap();
        assert!(
            notify.ends_with(&format!("* {}░", "·".repeat(29))),
            "{notify}"
        );
        assert!(!plain.contains('\u{1b}'));
        let coloured = tree(&doc, &Theme { color: true }, 120);
        assert!(coloured.contains('\u{1b}'));
    }

    #[test]
    fn the_critical_path_is_marked_down_to_the_model_call() {
        let mut doc = sample_doc();
        doc.spans.pop();
        let out = plain(&doc, 80, TreeOptions::default());
        let marked: Vec<&str> = out
            .lines()
            .filter(|l| l.chars().nth(58) == Some('*'))
            .map(|l| {
                let l = l.trim_start_matches(|c| "│├└─ ".contains(c));
                l.split("  ").nth(1).unwrap_or_default()
            })
            .collect();
        assert_eq!(
            marked,
            ["Order Validation", "researcher", "gpt-4o-mini"],
            "{out}"
        );
        let coloured = tree(&doc, &Theme { color: true }, 80);
        assert!(
            coloured.contains("\u{1b}[1mresearcher\u{1b}[0m"),
            "{coloured}"
        );
    }

    /// The fixture's agent with its MCP servers and calls, as a trace of its own.
    fn mcp_doc() -> TraceDoc {
        let mut doc = crate::trace::fixture::every_kind();
        let keep = |s: &Span| {
            s.span_id == crate::trace::fixture::sid(2)
                || (s.parent_id == Some(crate::trace::fixture::sid(2))
                    && (s.kind == SpanKind::McpTools || s.mcp_server().is_some()))
        };
        doc.spans.retain(keep);
        doc.spans[0].parent_id = None;
        doc.trace.metadata.clear();
        doc
    }

    #[test]
    fn mcp_servers_show_their_tool_count_and_calls_their_server() {
        let doc = mcp_doc();
        let out = plain(&doc, 100, TreeOptions::default());
        insta::assert_snapshot!(out);
        assert!(
            out.contains("mcp_tools  time  ok  0.1ms  2 tools · cached  "),
            "{out}"
        );
        assert!(out.contains("mcp_tools  broken  error  0.1ms  "), "{out}");
        assert!(
            out.contains("function  echo  error  0.1ms  mcp everything  "),
            "{out}"
        );
        // With content, a server that failed shows its stderr, a call its arguments and result.
        let content = plain(
            &doc,
            100,
            TreeOptions {
                content: true,
                ..TreeOptions::default()
            },
        );
        insta::assert_snapshot!("mcp_content", content);
    }

    #[test]
    fn depth_hides_deeper_spans_and_counts_them() {
        let doc = sample_doc();
        let depth = |n| TreeOptions {
            depth: Some(n),
            ..TreeOptions::default()
        };
        insta::assert_snapshot!(plain(&doc, 50, depth(1)));
        let out = plain(&doc, 50, depth(2));
        assert!(out.contains("\n│     └─ … 1 child hidden\n"), "{out}");
        assert_eq!(plain(&doc, 50, depth(3)), tree(&doc, &Theme::plain(), 50));
    }

    #[test]
    fn content_shows_inputs_and_outputs_wrapped_and_cut() {
        let mut doc = sample_doc();
        doc.spans[2]
            .attributes
            .insert("input".into(), "Research AI in healthcare".into());
        let output = (1..=12).map(|n| format!("- point {n}")).collect::<Vec<_>>();
        doc.spans[2]
            .attributes
            .insert("output".into(), output.join("\n").into());
        doc.spans[3].attributes.insert(
            "input".into(),
            serde_json::json!([
                {"role": "system", "content": "You research AI in healthcare and answer in five bullet points, each of them short."},
                {"role": "user", "content": "Research AI in healthcare"}
            ]),
        );
        doc.spans[4]
            .attributes
            .insert("stderr_tail".into(), "connection refused\n".into());
        let opts = TreeOptions {
            content: true,
            events: false,
            ..TreeOptions::default()
        };
        insta::assert_snapshot!(plain(&doc, 50, opts));
    }

    #[test]
    fn scores_read_as_name_value_label_verdict_and_why() {
        use crate::trace::ScoreSource;
        let mut doc = sample_doc();
        let at = doc.spans[2].started_at;
        let judged = Score {
            value: Some(0.75),
            label: Some("mostly right".into()),
            explanation: Some("misses the delivery date".into()),
            passed: Some(true),
            threshold: Some(0.5),
            ..Score::new("correct", ScoreSource::Judge)
        };
        let check = Score {
            value: Some(0.0),
            passed: Some(false),
            explanation: Some("expected output to contain \"refund\"".into()),
            ..Score::new("mentions_refund", ScoreSource::Check)
        };
        let broken = Score::failed("tone", ScoreSource::Command, "exited with status 3");
        doc.spans[2].events = vec![judged.to_event(at), check.to_event(at), broken.to_event(at)];
        let opts = TreeOptions {
            depth: Some(2),
            ..TreeOptions::default()
        };
        insta::assert_snapshot!(plain(&doc, 59, opts));
        assert_eq!(format_score(1.0), "1");
        assert_eq!(format_score(0.333333), "0.3333");
        assert_eq!(format_score(-0.00001), "0");
    }

    #[test]
    fn no_events_leaves_the_event_lines_out() {
        let doc = sample_doc();
        let opts = TreeOptions {
            events: false,
            ..TreeOptions::default()
        };
        let with = tree(&doc, &Theme::plain(), 80);
        let without = plain(&doc, 80, opts);
        assert!(with.contains("Validation started"));
        assert!(!without.contains("Validation started"));
        assert_eq!(with.lines().count(), without.lines().count() + 1);
    }

    #[test]
    fn a_group_reads_in_start_order_with_the_gaps_between() {
        let first = sample_doc();
        let mut second = sample_doc();
        let shift = 812_400 + 192_000_000;
        second.trace.name = "Customer Support - Follow-up".into();
        second.trace.started_at = Timestamp(second.trace.started_at.0 + shift);
        second.trace.ended_at = second.trace.ended_at.map(|t| Timestamp(t.0 + shift));
        for span in &mut second.spans {
            span.started_at = Timestamp(span.started_at.0 + shift);
            span.ended_at = span.ended_at.map(|t| Timestamp(t.0 + shift));
            for e in &mut span.events {
                e.time = Timestamp(e.time.0 + shift);
            }
        }
        second.spans.truncate(1);
        let opts = TreeOptions {
            depth: Some(1),
            ..TreeOptions::default()
        };
        let out = group(&[second.clone(), first.clone()], &Theme::plain(), 50, &opts);
        insta::assert_snapshot!(out);
        let mut overlapping = second;
        overlapping.trace.started_at = Timestamp(first.trace.started_at.0 + 800_000);
        let out = group(&[first, overlapping], &Theme::plain(), 80, &opts);
        assert!(
            out.contains("\n  … started 12ms before the previous one ended …\n"),
            "{out}"
        );
        assert_eq!(spaced_duration(61_000.0), "1m 01s");
        assert_eq!(spaced_duration(7_380_000.0), "2h 03m");
        assert_eq!(spaced_duration(4_249.0), "4.2s");
    }
}
