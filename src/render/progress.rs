//! Progress on stderr while `run` works, as the README (Progress and the waterfall) describes: live
//! bars on a terminal, plain lines anywhere else.
//!
//! - **Live** (stderr is a terminal and `CI` is not set): an indicatif multi-progress view with
//!   one line per running step (spinner, span path, elapsed time, tokens so far, and what its
//!   model is doing) and a compact line per finished step printed above the bars. Model calls,
//!   tool calls and handoffs show as a suffix of their agent's line, not as lines of their own,
//!   and past a screenful of parallel steps the rest are counted on one line.
//! - **Plain** (no terminal, or `CI=true`): one line per finished step, never an escape code.
//!
//! A sink runs on the engine's threads, so it only updates state under a short lock; indicatif
//! draws on its own (rate-limited) schedule and ticks the spinners from its own threads.

use std::collections::{HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::line::clean;
use super::theme::{ColorChoice, Style, Theme};
use super::{human_duration, width_of};
use crate::trace::bound::truncate;
use crate::trace::{Sink, Span, SpanId, SpanKind, Status, Trace};

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

fn trace_ended_line(trace: &Trace) -> String {
    let status = match trace.status {
        Status::Ok => "done",
        other => other.as_str(),
    };
    format!(
        "trace {}  {status}  {}",
        trace.trace_id,
        trace.duration_ms().map(human_duration).unwrap_or_default()
    )
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

    fn span_started(&self, _span: &Arc<Span>) {}

    fn span_ended(&self, span: &Arc<Span>) {
        if !is_model_call(span.kind) {
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
        SpanKind::Generation | SpanKind::Function | SpanKind::Handoff
    )
}

/// Steps that get a live line while they run: the ones that do work. Custom spans only group
/// other steps, whose lines carry their names in the path.
fn has_bar(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Agent | SpanKind::Command)
}

/// The live view for a terminal.
pub struct Live {
    multi: MultiProgress,
    theme: Theme,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every open span, so that a step's path and its agent can be found.
    open: HashMap<SpanId, Open>,
    /// Running steps over the cap, oldest first: they get a line when one frees up.
    waiting: VecDeque<SpanId>,
    /// `… and N more running`
    more: Option<ProgressBar>,
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
    bar: Option<ProgressBar>,
}

/// The tick of the spinners; slow enough to cost nothing, quick enough to look alive.
const TICK: Duration = Duration::from_millis(120);

impl Live {
    pub fn new(theme: Theme) -> Live {
        Live::with_target(theme, ProgressDrawTarget::stderr())
    }

    fn with_target(theme: Theme, target: ProgressDrawTarget) -> Live {
        Live {
            multi: MultiProgress::with_draw_target(target),
            theme,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn width() -> usize {
        terminal_size::terminal_size_of(std::io::stderr())
            .map_or(80, |(terminal_size::Width(w), _)| usize::from(w))
    }

    /// How many step lines fit: a screenful less room for the finished lines.
    fn cap() -> usize {
        terminal_size::terminal_size_of(std::io::stderr())
            .map_or(12, |(_, terminal_size::Height(h))| usize::from(h))
            .saturating_sub(4)
            .clamp(3, 20)
    }

    fn style(&self) -> ProgressStyle {
        let template = if self.theme.color {
            "{spinner:.cyan} {prefix} {elapsed:.dim}{msg}"
        } else {
            "{spinner} {prefix} {elapsed}{msg}"
        };
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
    }

    /// A line for a running step: last among the running steps, above `… and N more running`.
    fn bar_for(&self, open: &Open, more: Option<&ProgressBar>) -> ProgressBar {
        let bar = ProgressBar::new_spinner()
            .with_style(self.style())
            .with_elapsed(open.started.elapsed());
        let bar = match more {
            Some(more) => self.multi.insert_before(more, bar),
            None => self.multi.add(bar),
        };
        bar.set_prefix(fit_path(&open.path, Self::width().saturating_sub(24)));
        bar.set_message(suffix(open));
        bar.enable_steady_tick(TICK);
        bar
    }

    /// Keeps `… and N more running` in step with the waiting list.
    fn update_more(&self, state: &mut State) {
        match (state.waiting.len(), &state.more) {
            (0, Some(more)) => {
                more.finish_and_clear();
                self.multi.remove(more);
                state.more = None;
            }
            (0, None) => {}
            (n, Some(more)) => more.set_message(format!("… and {n} more running")),
            (n, None) => {
                let style = ProgressStyle::with_template("  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let more = self.multi.add(ProgressBar::new_spinner().with_style(style));
                more.set_message(format!("… and {n} more running"));
                state.more = Some(more);
            }
        }
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

    fn finished_line(&self, span: &Span, path: &str, tokens: u64) -> String {
        let t = &self.theme;
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
        let width = Self::width();
        let mut line = format!(
            "{} {}{}",
            t.paint(mark, style),
            fit_path(path, width.saturating_sub(width_of(&tail) + 2)),
            t.paint(&tail, Style::Muted)
        );
        if let Some(error) = &span.error
            && span.status != Status::Ok
        {
            let first = clean(error.message.lines().next().unwrap_or(""));
            let room = width.saturating_sub(4).max(10);
            line.push_str(&format!(
                "\n  {}",
                t.paint(&truncate(&first, room), Style::Error)
            ));
        }
        line
    }
}

/// `  120 tokens · gpt-4o-mini…` after the elapsed time.
fn suffix(open: &Open) -> String {
    let mut s = String::new();
    if open.tokens > 0 {
        s.push_str(&format!("  {} tokens", open.tokens));
    }
    if let Some(activity) = &open.activity {
        s.push_str(&format!("  · {activity}"));
    }
    s
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
        let line = format!("trace {}  {}", trace.trace_id, clean(&trace.name));
        let _ = self.multi.println(self.theme.paint(&line, Style::Muted));
    }

    fn span_started(&self, span: &Arc<Span>) {
        let mut state = self.state();
        let parent = span.parent_id.filter(|p| state.open.contains_key(p));
        let name = clean(&span.name);
        let path = match parent.and_then(|p| state.open.get(&p)) {
            Some(p) => format!("{} › {name}", p.path),
            None => name,
        };
        let mut open = Open {
            parent,
            kind: span.kind,
            path,
            started: Instant::now(),
            tokens: 0,
            activity: None,
            bar: None,
        };
        if is_model_call(span.kind) {
            let activity = match span.kind {
                SpanKind::Generation => span
                    .attributes
                    .get("model")
                    .and_then(Value::as_str)
                    .map_or_else(|| "model…".to_string(), |m| format!("{}…", clean(m))),
                SpanKind::Function => format!("tool {}…", clean(&span.name)),
                _ => format!("handoff {}", clean(&span.name)),
            };
            if let Some(owner) = Self::owner(&state, parent)
                && let Some(o) = state.open.get_mut(&owner)
            {
                o.activity = Some(activity);
                if let Some(bar) = &o.bar {
                    bar.set_message(suffix(o));
                }
            }
        } else if has_bar(span.kind) {
            let live = state.open.values().filter(|o| o.bar.is_some()).count();
            if live < Self::cap() {
                open.bar = Some(self.bar_for(&open, state.more.as_ref()));
            } else {
                state.waiting.push_back(span.span_id);
                self.update_more(&mut state);
            }
        }
        state.open.insert(span.span_id, open);
    }

    fn span_ended(&self, span: &Arc<Span>) {
        let mut line = None;
        {
            let mut state = self.state();
            let Some(open) = state.open.remove(&span.span_id) else {
                return;
            };
            if let Some(bar) = &open.bar {
                bar.finish_and_clear();
                self.multi.remove(bar);
            }
            state.waiting.retain(|id| *id != span.span_id);
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
                if let Some(owner) = Self::owner(&state, open.parent)
                    && let Some(o) = state.open.get_mut(&owner)
                {
                    o.activity = None;
                    if let Some(bar) = &o.bar {
                        bar.set_message(suffix(o));
                    }
                }
            } else {
                let tokens = span.usage().map_or(open.tokens, |u| u.total_tokens);
                line = Some(self.finished_line(span, &open.path, tokens));
            }
            // A freed line goes to the step that has waited longest.
            if open.bar.is_some()
                && let Some(next) = state.waiting.pop_front()
                && let Some(o) = state.open.get(&next)
            {
                let bar = self.bar_for(o, state.more.as_ref());
                if let Some(o) = state.open.get_mut(&next) {
                    o.bar = Some(bar);
                }
            }
            self.update_more(&mut state);
        }
        if let Some(line) = line {
            let _ = self.multi.println(line);
        }
    }

    fn trace_ended(&self, trace: &Trace) {
        {
            let mut state = self.state();
            for open in state.open.values() {
                if let Some(bar) = &open.bar {
                    bar.finish_and_clear();
                    self.multi.remove(bar);
                }
            }
            state.open.clear();
            state.waiting.clear();
            self.update_more(&mut state);
        }
        let style = match trace.status {
            Status::Ok => Style::Status(Status::Ok),
            Status::Error => Style::Error,
            other => Style::Status(other),
        };
        let _ = self
            .multi
            .println(self.theme.paint(&trace_ended_line(trace), style));
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_doc;

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

    #[test]
    fn steps_over_the_cap_wait_below_the_running_ones_and_take_freed_lines_above_the_count() {
        use indicatif::InMemoryTerm;
        let term = InMemoryTerm::new(40, 100);
        let live = Live::with_target(
            Theme::plain(),
            ProgressDrawTarget::term_like(Box::new(term.clone())),
        );
        let cap = Live::cap();
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
            live.span_started(&Arc::new(s.clone()));
        }
        // Free two lines: the two longest waiting steps take them.
        for s in steps.iter_mut().take(2) {
            s.status = Status::Ok;
            s.ended_at = Some(s.started_at);
            live.span_ended(&Arc::new(s.clone()));
        }
        // A printed line redraws every bar below it.
        let _ = live.multi.println("");
        let screen = term.contents();
        let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
        let more = lines
            .iter()
            .position(|l| l.contains("more running"))
            .unwrap_or_else(|| panic!("no count line in\n{screen}"));
        assert!(lines[more].contains("… and 3 more running"), "{screen}");
        let running: Vec<&&str> = lines.iter().filter(|l| l.contains("branch")).collect();
        assert!(
            lines[more + 1..].iter().all(|l| !l.contains("branch")),
            "a running step below the count line:\n{screen}"
        );
        assert!(
            running
                .iter()
                .any(|l| l.contains(&format!("branch {cap:02}")))
                && running
                    .iter()
                    .any(|l| l.contains(&format!("branch {:02}", cap + 1))),
            "the waiting steps that took the freed lines are shown:\n{screen}"
        );
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
    fn the_live_view_follows_a_trace_without_a_terminal() {
        // Hidden draw target: the bookkeeping runs, nothing is drawn.
        let live = Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            theme: Theme::plain(),
            state: Mutex::new(State::default()),
        };
        let doc = sample_doc();
        live.trace_started(&doc.trace);
        for span in &doc.spans[..4] {
            live.span_started(&Arc::new(span.clone()));
        }
        {
            let state = live.state();
            assert_eq!(state.open.len(), 4);
            let agent = &state.open[&doc.spans[2].span_id];
            assert_eq!(agent.path, "Order Validation › researcher");
            assert_eq!(agent.activity.as_deref(), Some("gpt-4o-mini…"));
            assert!(agent.bar.is_some());
            assert!(state.open[&doc.spans[0].span_id].bar.is_none());
        }
        live.span_ended(&Arc::new(doc.spans[3].clone()));
        {
            let state = live.state();
            let agent = &state.open[&doc.spans[2].span_id];
            assert_eq!(agent.tokens, 460);
            assert_eq!(agent.activity, None);
            assert_eq!(state.open[&doc.spans[0].span_id].tokens, 460);
        }
        let line = live.finished_line(&doc.spans[4], "notify", 0);
        assert!(
            line.starts_with("✗ notify  3.0ms\n  command exited"),
            "{line}"
        );
        live.trace_ended(&doc.trace);
        assert!(live.state().open.is_empty());
    }
}
