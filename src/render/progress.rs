//! Progress on stderr while `run` works, as the README (Progress and the waterfall) describes: live
//! bars on a terminal, plain lines anywhere else.
//!
//! - **Live** (stderr is a terminal and `CI` is not set): one line per running step (spinner,
//!   span path, elapsed time, tokens so far, and what its model is doing) and a compact line
//!   per finished step printed above the running ones. Model calls,
//!   tool calls, MCP tool listings and handoffs show as a suffix of their agent's line, not as
//!   lines of their own (an MCP server that failed does get its line, with its error: it is why
//!   the agent fails), and past a screenful of parallel steps the rest are counted on one line.
//! - **Plain** (no terminal, or `CI=true`): one line per finished step (and per failed MCP
//!   server), never an escape code.
//!
//! A sink runs on the engine's threads, so it only updates state and draws under a short lock;
//! a thread of the view's own turns the spinners. How the lines reach the terminal (fitted to its
//! width at every draw, each ending with a newline, so that a resize cannot garble them) is
//! [`super::screen`]'s business.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::line::{Line, clean};
use super::screen::Screen;
use super::theme::{ColorChoice, Style, Theme};
use super::{human_duration, width_of};
use crate::trace::{Sink, Span, SpanId, SpanKind, StartedSpan, Status, Trace};

/// The progress sink for this run, or `None` under `--quiet`. `stream` (agents' text printed to
/// stderr as it arrives) rules out the live view, which would draw over the text.
pub fn sink(quiet: bool, stream: bool, color: ColorChoice) -> Option<Arc<dyn Sink>> {
    if quiet {
        return None;
    }
    let tty = std::io::stderr().is_terminal();
    if tty && !under_ci() && !stream {
        let theme = Theme::detect(color, tty);
        Some(Arc::new(Live::new(theme)))
    } else {
        Some(Arc::new(Plain))
    }
}

/// `CI` set to anything but `false` or `0` (CI services set `CI=true`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// One plain line per finished step; nothing here ever writes escape codes.
pub struct Plain;

/// `       ok  command inventory  1.02s  460 tokens  (first line of the error)`
pub fn plain_line(span: &Span) -> String {
    let mut s = format!(
        "{:>9}  {} {}",
        span.status.as_str(),
        span.kind,
        clean(&span.name)
    );
    if let Some(ms) = span.duration_ms() {
        s.push_str(&format!("  {}", human_duration(ms)));
    }
    if let Some(usage) = span.usage() {
        s.push_str(&format!("  {} tokens", usage.total_tokens));
    }
    if let Some(error) = &span.error {
        let first = error.message.lines().next().unwrap_or("");
        s.push_str(&format!("  ({})", clean(first)));
    }
    s
}

/// `done  1.02s` (or the trace's status) after the trace's id at the end of a run.
fn trace_outcome(trace: &Trace) -> String {
    let status = match trace.status {
        Status::Ok => "done",
        other => other.as_str(),
    };
    format!(
        "{status}  {}",
        trace.duration_ms().map(human_duration).unwrap_or_default()
    )
}

fn trace_ended_line(trace: &Trace) -> String {
    format!("trace {}  {}", trace.trace_id, trace_outcome(trace))
}

/// `trace <id>  <rest>` for the live view: on a narrow terminal `rest` is cut down to `keep`
/// characters, then the id.
fn trace_line(trace: &Trace, rest: &str, keep: usize, style: Style) -> Line {
    Line::default()
        .text("trace ", style)
        .flex(&trace.trace_id.to_string(), style, 12)
        .text("  ", style)
        .flex(rest, style, keep)
}

impl Sink for Plain {
    fn trace_started(&self, trace: &Trace) {
        let _ = writeln!(
            std::io::stderr(),
            "trace {}  {}",
            trace.trace_id,
            clean(&trace.name)
        );
    }

    fn span_started(&self, _span: &Arc<StartedSpan>) {}

    fn span_ended(&self, span: &Arc<Span>) {
        if !is_model_call(span.kind) || failed_server(span) {
            let _ = writeln!(std::io::stderr(), "{}", plain_line(span));
        }
    }

    fn trace_ended(&self, trace: &Trace) {
        let _ = writeln!(std::io::stderr(), "{}", trace_ended_line(trace));
    }
}

/// Spans that belong to an agent's turn rather than being steps of their own.
fn is_model_call(kind: SpanKind) -> bool {
    matches!(
        kind,
        SpanKind::Generation | SpanKind::Function | SpanKind::Handoff | SpanKind::McpTools
    )
}

/// An MCP server that could not list its tools: the agent fails because of it, so its own error
/// (not only the agent's pointer to it) gets a line.
fn failed_server(span: &Span) -> bool {
    span.kind == SpanKind::McpTools && span.status == Status::Error
}

/// Steps that get a live line while they run: the ones that do work. Custom spans only group
/// other steps, whose lines carry their names in the path.
fn has_bar(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Agent | SpanKind::Command)
}

/// The live view for a terminal. The state sits behind an `Arc` so that the ticker thread can
/// redraw the spinners and elapsed times; it holds a weak reference and stops when the view is
/// gone or the trace has ended.
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    theme: Theme,
    /// When the view started: the spinners' frame is the time since then.
    epoch: Instant,
    state: Mutex<State>,
}

struct State {
    /// Every open span, so that a step's path and its agent can be found.
    open: HashMap<SpanId, Open>,
    /// The running steps that have a line, in the order their lines appear.
    shown: Vec<SpanId>,
    /// Running steps over the cap, oldest first: they get a line when one frees up.
    waiting: VecDeque<SpanId>,
    screen: Screen,
    /// The trace has ended: nothing more is drawn, and the ticker stops.
    done: bool,
}

struct Open {
    parent: Option<SpanId>,
    kind: SpanKind,
    /// `Order Validation › Checks › inventory`
    path: String,
    started: Instant,
    tokens: u64,
    /// What its model is doing: `gpt-4o-mini…`, `tool lookup…`.
    activity: Option<String>,
}

/// How often the spinners turn; slow enough to cost nothing, quick enough to look alive.
const TICK: Duration = Duration::from_millis(120);

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Live {
    /// The view on stderr, with a thread that redraws it at every tick.
    pub fn new(theme: Theme) -> Live {
        let live = Live::with_screen(theme, Screen::stderr());
        let weak = Arc::downgrade(&live.inner);
        // Without a thread the view still works, its spinners still.
        let _ = std::thread::Builder::new()
            .name("agentrace-progress".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    let Some(inner) = weak.upgrade() else { break };
                    if !inner.tick() {
                        break;
                    }
                }
            });
        live
    }

    fn with_screen(theme: Theme, screen: Screen) -> Live {
        Live {
            inner: Arc::new(Inner {
                theme,
                epoch: Instant::now(),
                state: Mutex::new(State {
                    open: HashMap::new(),
                    shown: Vec::new(),
                    waiting: VecDeque::new(),
                    screen,
                    done: false,
                }),
            }),
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Redraws the running steps; false once there is nothing more to draw.
    fn tick(&self) -> bool {
        let mut state = self.state();
        if state.done {
            return false;
        }
        if !state.shown.is_empty() || state.screen.is_drawn() {
            self.draw(&mut state, Vec::new());
        }
        true
    }

    /// Prints `above` (lines that stay) and redraws the running steps under them.
    fn draw(&self, state: &mut State, above: Vec<Line>) {
        let live = self.live_lines(state);
        state.screen.draw(above, live, &self.theme);
    }

    /// A line per running step that has one, then `… and N more running`.
    fn live_lines(&self, state: &State) -> Vec<Line> {
        let width = state.screen.width();
        let frame = (self.epoch.elapsed().as_millis() / TICK.as_millis()) as usize;
        let spinner = SPINNER[frame % SPINNER.len()];
        let mut lines: Vec<Line> = state
            .shown
            .iter()
            .filter_map(|id| state.open.get(id))
            .map(|open| {
                let mut line = Line::default()
                    .text(spinner, Style::Status(Status::Running))
                    .text(" ", Style::Plain)
                    .text(
                        &fit_path(&open.path, width.saturating_sub(24)),
                        Style::Plain,
                    )
                    .text(" ", Style::Plain)
                    .text(&elapsed(open.started.elapsed()), Style::Muted);
                if open.tokens > 0 {
                    line = line.field(&format!("{} tokens", open.tokens), Style::Plain);
                }
                if let Some(activity) = &open.activity {
                    line = line.field_flex(&format!("· {activity}"), Style::Plain);
                }
                line
            })
            .collect();
        if !state.waiting.is_empty() {
            lines.push(Line::default().text(
                &format!("  … and {} more running", state.waiting.len()),
                Style::Plain,
            ));
        }
        lines
    }

    /// How many step lines fit: a screenful less room for the finished lines.
    fn cap(state: &State) -> usize {
        state
            .screen
            .height()
            .unwrap_or(12)
            .saturating_sub(4)
            .clamp(3, 20)
    }

    /// The nearest open ancestor (or the span itself) that has a live line.
    fn owner(state: &State, mut id: Option<SpanId>) -> Option<SpanId> {
        let mut hops = 0;
        while let Some(current) = id {
            let open = state.open.get(&current)?;
            if has_bar(open.kind) {
                return Some(current);
            }
            id = open.parent;
            hops += 1;
            if hops > 1000 {
                return None;
            }
        }
        None
    }

    /// `✓ Phase › first  313.0ms  460 tokens`, and the first line of the error under a step
    /// that failed.
    fn finished_lines(&self, span: &Span, path: &str, tokens: u64, width: usize) -> Vec<Line> {
        let (mark, style) = match span.status {
            Status::Ok => ("✓", Style::Status(Status::Ok)),
            Status::Error => ("✗", Style::Error),
            Status::Cancelled => ("⊘", Style::Status(Status::Cancelled)),
            Status::Skipped => ("–", Style::Muted),
            Status::Running => ("…", Style::Muted),
        };
        let mut tail = String::new();
        if let Some(ms) = span.duration_ms()
            && span.status != Status::Skipped
        {
            tail.push_str(&format!("  {}", human_duration(ms)));
        }
        if tokens > 0 {
            tail.push_str(&format!("  {tokens} tokens"));
        }
        if span.status == Status::Skipped {
            tail.push_str("  skipped");
        }
        let mut lines = vec![
            Line::default()
                .text(mark, style)
                .text(" ", Style::Plain)
                .text(
                    &fit_path(path, width.saturating_sub(width_of(&tail) + 3)),
                    Style::Plain,
                )
                .text(&tail, Style::Muted),
        ];
        if let Some(error) = &span.error
            && span.status != Status::Ok
        {
            let first = clean(error.message.lines().next().unwrap_or(""));
            lines.push(
                Line::default()
                    .text("  ", Style::Plain)
                    .flex(&first, Style::Error, 1),
            );
        }
        lines
    }
}

/// `0s`, `12s`, `3m07s`: a running step's time, in whole seconds so that it does not flicker.
fn elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// A path cut from the front when it is too long, so that the step's own name stays.
fn fit_path(path: &str, max: usize) -> String {
    let max = max.max(12);
    let len = width_of(path);
    if len <= max {
        return path.to_string();
    }
    let tail: String = path.chars().skip(len - (max - 1)).collect();
    format!("…{tail}")
}

impl Sink for Live {
    fn trace_started(&self, trace: &Trace) {
        let inner = &self.inner;
        let mut state = inner.state();
        let line = trace_line(trace, &clean(&trace.name), 20, Style::Muted);
        inner.draw(&mut state, vec![line]);
    }

    fn span_started(&self, span: &Arc<StartedSpan>) {
        let Some(span) = span.snapshot() else {
            return;
        };
        let inner = &self.inner;
        let mut state = inner.state();
        let parent = span.parent_id.filter(|p| state.open.contains_key(p));
        let name = clean(&span.name);
        let path = match parent.and_then(|p| state.open.get(&p)) {
            Some(p) => format!("{} › {name}", p.path),
            None => name,
        };
        let open = Open {
            parent,
            kind: span.kind,
            path,
            started: Instant::now(),
            tokens: 0,
            activity: None,
        };
        if is_model_call(span.kind) {
            let activity = match span.kind {
                SpanKind::Generation => span
                    .attributes
                    .get("model")
                    .and_then(Value::as_str)
                    .map_or_else(|| "model…".to_string(), |m| format!("{}…", clean(m))),
                SpanKind::Function => match span.mcp_server() {
                    Some(server) => format!("mcp {} › {}…", clean(server), clean(&span.name)),
                    None => format!("tool {}…", clean(&span.name)),
                },
                SpanKind::McpTools => format!("mcp {}…", clean(&span.name)),
                _ => format!("handoff {}", clean(&span.name)),
            };
            if let Some(owner) = Inner::owner(&state, parent)
                && let Some(o) = state.open.get_mut(&owner)
            {
                o.activity = Some(activity);
            }
        } else if has_bar(span.kind) {
            if state.shown.len() < Inner::cap(&state) {
                state.shown.push(span.span_id);
            } else {
                state.waiting.push_back(span.span_id);
            }
        }
        state.open.insert(span.span_id, open);
        // The next tick draws the new line: a step that ends sooner never flashes one.
    }

    fn span_ended(&self, span: &Arc<Span>) {
        let inner = &self.inner;
        let mut state = inner.state();
        let Some(open) = state.open.remove(&span.span_id) else {
            return;
        };
        let had_line = state.shown.contains(&span.span_id);
        state.shown.retain(|id| *id != span.span_id);
        state.waiting.retain(|id| *id != span.span_id);
        // A freed line goes to the step that has waited longest.
        if had_line && let Some(next) = state.waiting.pop_front() {
            state.shown.push(next);
        }
        if is_model_call(span.kind) {
            let tokens = span.usage().map_or(0, |u| u.total_tokens);
            // The tokens count for every open ancestor; the owner's line says so at once.
            let mut up = open.parent;
            while let Some(id) = up {
                let Some(o) = state.open.get_mut(&id) else {
                    break;
                };
                o.tokens += tokens;
                up = o.parent;
            }
            if let Some(owner) = Inner::owner(&state, open.parent)
                && let Some(o) = state.open.get_mut(&owner)
            {
                o.activity = None;
            }
            if failed_server(span) && !state.done {
                let width = state.screen.width();
                let lines = inner.finished_lines(span, &open.path, 0, width);
                inner.draw(&mut state, lines);
            }
        } else {
            let tokens = span.usage().map_or(open.tokens, |u| u.total_tokens);
            let width = state.screen.width();
            let lines = inner.finished_lines(span, &open.path, tokens, width);
            if !state.done {
                inner.draw(&mut state, lines);
            }
        }
    }

    fn trace_ended(&self, trace: &Trace) {
        let inner = &self.inner;
        let mut state = inner.state();
        state.open.clear();
        state.shown.clear();
        state.waiting.clear();
        let style = match trace.status {
            Status::Ok => Style::Status(Status::Ok),
            Status::Error => Style::Error,
            other => Style::Status(other),
        };
        let outcome = trace_outcome(trace);
        let line = trace_line(trace, &outcome, width_of(&outcome), style);
        // Nothing is live any more: the last line ends with a newline, under the finished ones.
        inner.draw(&mut state, vec![line]);
        state.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_doc;
    use crate::render::screen::tests::Fake;

    #[test]
    fn plain_lines_keep_their_format() {
        let doc = sample_doc();
        assert_eq!(
            plain_line(&doc.spans[1]),
            "       ok  command Inventory Check  5.1ms"
        );
        assert_eq!(
            plain_line(&doc.spans[2]),
            "       ok  agent researcher  200.1ms  460 tokens"
        );
        assert_eq!(
            plain_line(&doc.spans[4]),
            "    error  command notify  3.0ms  (command exited with status 1: connection refused)"
        );
    }

    fn live_at(width: usize, height: usize) -> (Fake, Live) {
        let (fake, screen) = Fake::screen(width, height);
        (fake, Live::with_screen(Theme::plain(), screen))
    }

    fn painted(lines: Vec<Line>) -> Vec<String> {
        lines.iter().map(|l| l.paint(&Theme::plain())).collect()
    }

    #[test]
    fn steps_over_the_cap_wait_below_the_running_ones_and_take_freed_lines_above_the_count() {
        let (_fake, live) = live_at(40, 10);
        let cap = Inner::cap(&live.inner.state());
        assert_eq!(cap, 6);
        let doc = sample_doc();
        let mut steps: Vec<Span> = (0..cap + 5)
            .map(|i| {
                let mut s = doc.spans[1].clone();
                s.span_id = SpanId([i as u8 + 1; 8]);
                s.parent_id = None;
                s.name = format!("branch {i:02}");
                s.status = Status::Running;
                s.ended_at = None;
                s
            })
            .collect();
        for s in &steps {
            live.span_started(&StartedSpan::of(s.clone()));
        }
        // Free two lines: the two longest waiting steps take them.
        for s in steps.iter_mut().take(2) {
            s.status = Status::Ok;
            s.ended_at = Some(s.started_at);
            live.span_ended(&Arc::new(s.clone()));
        }
        let lines = painted(live.inner.live_lines(&live.inner.state()));
        assert_eq!(lines.len(), cap + 1, "{lines:#?}");
        assert_eq!(lines[cap], "  … and 3 more running");
        let names: Vec<&str> = lines[..cap]
            .iter()
            .map(|l| l.split_once(' ').map_or("", |(_, rest)| rest))
            .collect();
        // The first two ended; the two that waited longest took their lines, at the end.
        for (i, name) in names.iter().enumerate() {
            assert!(
                name.starts_with(&format!("branch {:02} 0s", i + 2)),
                "{lines:#?}"
            );
        }
    }

    #[test]
    fn the_view_ends_with_a_newline_and_no_line_is_padded_or_wider_than_the_terminal() {
        let (fake, live) = live_at(100, 40);
        let doc = sample_doc();
        live.trace_started(&doc.trace);
        let mut step = doc.spans[1].clone();
        step.name = "a step with a name long enough to be cut at forty columns".into();
        step.parent_id = None;
        let running = StartedSpan::of(Span {
            status: Status::Running,
            ended_at: None,
            ..step.clone()
        });
        live.span_started(&running);
        assert!(live.inner.tick());
        let wide = fake.take();
        assert!(wide.contains("a step with a name long enough"), "{wide:?}");
        // The terminal is narrowed: everything from here on fits 40 columns.
        *fake.size.lock().unwrap() = (40, 40);
        assert!(live.inner.tick());
        live.span_ended(&Arc::new(step));
        live.trace_ended(&doc.trace);
        assert!(!live.inner.tick(), "the ticker stops with the trace");
        let narrow = fake.take();
        assert!(narrow.ends_with("  done  812.4ms\n"), "{narrow:?}");
        let escapes = regex::Regex::new("\u{1b}\\[[0-9]*[AJ]").unwrap();
        for out in [&wide, &narrow] {
            assert!(!out.contains("   "), "no padding: {out:?}");
        }
        for line in escapes.replace_all(&narrow, "").split(['\n', '\r']) {
            assert!(line.chars().count() < 40, "{line:?} in {narrow:?}");
        }
    }

    #[test]
    fn long_paths_keep_their_end() {
        assert_eq!(fit_path("a › b", 40), "a › b");
        assert_eq!(
            fit_path(
                "Order Validation › Checks › Inventory Check › inventory",
                30
            ),
            "…› Inventory Check › inventory"
        );
    }

    #[test]
    fn the_live_view_follows_a_trace() {
        let (fake, live) = live_at(100, 40);
        let doc = sample_doc();
        live.trace_started(&doc.trace);
        for span in &doc.spans[..4] {
            live.span_started(&StartedSpan::of(span.clone()));
        }
        {
            let state = live.inner.state();
            assert_eq!(state.open.len(), 4);
            let agent = &state.open[&doc.spans[2].span_id];
            assert_eq!(agent.path, "Order Validation › researcher");
            assert_eq!(agent.activity.as_deref(), Some("gpt-4o-mini…"));
            assert!(state.shown.contains(&doc.spans[2].span_id));
            assert!(!state.shown.contains(&doc.spans[0].span_id));
        }
        live.span_ended(&Arc::new(doc.spans[3].clone()));
        {
            let state = live.inner.state();
            let agent = &state.open[&doc.spans[2].span_id];
            assert_eq!(agent.tokens, 460);
            assert_eq!(agent.activity, None);
            assert_eq!(state.open[&doc.spans[0].span_id].tokens, 460);
        }
        let lines = painted(live.inner.finished_lines(&doc.spans[4], "notify", 0, 100));
        assert_eq!(
            lines,
            [
                "✗ notify  3.0ms",
                "  command exited with status 1: connection refused"
            ]
        );
        live.trace_ended(&doc.trace);
        assert!(live.inner.state().open.is_empty());
        assert!(fake.take().ends_with('\n'));
    }

    /// A span of MCP work under `agent`: a tool list or a call to `server`.
    fn mcp_span(agent: &Span, n: u8, kind: SpanKind, name: &str, server: &str) -> Span {
        let mut s = agent.clone();
        s.span_id = SpanId([n; 8]);
        s.parent_id = Some(agent.span_id);
        s.kind = kind;
        s.name = name.into();
        s.status = Status::Running;
        s.ended_at = None;
        s.attributes = serde_json::Map::new();
        s.attributes
            .insert("mcp.server".into(), Value::String(server.into()));
        s
    }

    #[test]
    fn mcp_work_shows_on_its_agents_line_and_a_server_that_failed_gets_its_own() {
        let (fake, live) = live_at(100, 40);
        let doc = sample_doc();
        live.trace_started(&doc.trace);
        let agent = &doc.spans[2];
        live.span_started(&StartedSpan::of(doc.spans[0].clone()));
        live.span_started(&StartedSpan::of(agent.clone()));
        let activity = |live: &Live| live.inner.state().open[&agent.span_id].activity.clone();
        let listing = mcp_span(agent, 40, SpanKind::McpTools, "time", "time");
        live.span_started(&StartedSpan::of(listing.clone()));
        assert_eq!(activity(&live).as_deref(), Some("mcp time…"));
        live.span_ended(&Arc::new(Span {
            status: Status::Ok,
            ended_at: Some(listing.started_at),
            ..listing
        }));
        assert_eq!(activity(&live), None);
        let call = mcp_span(agent, 41, SpanKind::Function, "get_current_time", "time");
        live.span_started(&StartedSpan::of(call));
        assert_eq!(
            activity(&live).as_deref(),
            Some("mcp time › get_current_time…")
        );
        fake.take();
        let broken = mcp_span(agent, 42, SpanKind::McpTools, "broken", "broken");
        live.span_started(&StartedSpan::of(broken.clone()));
        let failed = Span {
            status: Status::Error,
            ended_at: Some(broken.started_at),
            error: Some(crate::trace::ErrorInfo::new("server exited")),
            ..broken
        };
        live.span_ended(&Arc::new(failed.clone()));
        let out = fake.take();
        assert!(
            out.contains("✗ Order Validation › researcher › broken"),
            "{out:?}"
        );
        assert!(out.contains("server exited"), "{out:?}");
        assert_eq!(
            plain_line(&failed),
            "    error  mcp_tools broken  0.0ms  (server exited)"
        );
    }
}
