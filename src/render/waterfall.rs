//! The time axis of the tree: where each span's bar goes (like Jaeger's timeline), how the
//! width is shared between names and bars, and the critical path.
//!
//! Without colour the bars still read: `█` a span that ended well, `!` one that failed, `░` one
//! that was cancelled or never ended, `-` a skipped one, `·` the idle axis.

use std::collections::{HashMap, HashSet};

use super::human_duration;
use super::line::Line;
use super::theme::Style;
use crate::trace::{Span, SpanId, Status, Timestamp, TraceDoc};

/// Below this width there is no room for bars: the tree alone is printed.
pub(crate) const BARS_MIN_WIDTH: usize = 60;
/// The narrowest and widest a bar column gets.
const BAR_MIN: usize = 16;
const BAR_MAX: usize = 60;

/// How a line's width is shared: the name column, then a marker and a space, then the bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) width: usize,
    pub(crate) name: usize,
    /// The bar column's width; 0 when the terminal is too narrow for bars.
    pub(crate) bar: usize,
}

impl Layout {
    pub(crate) fn for_width(width: usize) -> Layout {
        if width < BARS_MIN_WIDTH {
            return Layout {
                width,
                name: width,
                bar: 0,
            };
        }
        let bar = (width / 4).clamp(BAR_MIN, BAR_MAX);
        Layout {
            width,
            name: width - bar - 2,
            bar,
        }
    }

    pub(crate) fn bars(&self) -> bool {
        self.bar > 0
    }
}

/// The trace's time axis: from its start to its end (or to the last thing that happened, for a
/// trace that has not ended).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axis {
    start: i64,
    end: i64,
}

impl Axis {
    pub(crate) fn of(doc: &TraceDoc) -> Axis {
        let start = doc
            .spans
            .iter()
            .map(|s| s.started_at.micros())
            .chain([doc.trace.started_at.micros()])
            .min()
            .unwrap_or_default();
        let last = doc
            .spans
            .iter()
            .flat_map(|s| {
                [Some(s.started_at), s.ended_at]
                    .into_iter()
                    .chain(s.events.iter().map(|e| Some(e.time)))
            })
            .chain([Some(doc.trace.started_at), doc.trace.ended_at])
            .flatten()
            .map(Timestamp::micros)
            .max()
            .unwrap_or(start);
        Axis {
            start,
            end: last.max(start + 1),
        }
    }

    /// Where the axis ends: the trace's end, or the last thing that happened in it.
    pub(crate) fn end(&self) -> Timestamp {
        Timestamp(self.end)
    }

    fn span_end(&self, span: &Span) -> i64 {
        span.ended_at.map_or(self.end, Timestamp::micros)
    }

    /// The column of a point in time on a bar of `width` columns.
    fn column(&self, t: i64, width: usize) -> f64 {
        let len = (self.end - self.start) as f64;
        ((t - self.start) as f64 / len * width as f64).clamp(0.0, width as f64)
    }

    /// `0 … half … total` across `width` columns, as much of it as fits.
    pub(crate) fn scale(&self, width: usize) -> Line {
        let total = human_duration((self.end - self.start) as f64 / 1000.0);
        let half = human_duration((self.end - self.start) as f64 / 2000.0);
        let mut chars = vec![' '; width];
        let mut put = |text: &str, at: usize| {
            for (i, c) in text.chars().enumerate() {
                if let Some(slot) = chars.get_mut(at + i) {
                    *slot = c;
                }
            }
        };
        let total_len = total.chars().count();
        if width >= total_len + 2 {
            put("0", 0);
            put(&total, width - total_len);
        }
        let half_len = half.chars().count();
        let half_at = (width / 2).saturating_sub(half_len / 2);
        if half_at >= 3 && half_at + half_len + 3 <= width.saturating_sub(total_len) {
            put(&half, half_at);
        }
        let text: String = chars.into_iter().collect();
        Line::default().text(&text, Style::Muted)
    }

    /// The bar of `span`: idle axis, the span, idle axis.
    pub(crate) fn bar(&self, span: &Span, width: usize) -> Line {
        let from = self.column(span.started_at.micros(), width).floor() as usize;
        let from = from.min(width.saturating_sub(1));
        let to = (self.column(self.span_end(span), width).ceil() as usize).clamp(from + 1, width);
        let fill = match span.status {
            Status::Ok => '█',
            Status::Error => '!',
            Status::Cancelled | Status::Running => '░',
            Status::Skipped => '-',
        };
        let idle = |n: usize| "·".repeat(n);
        Line::default()
            .text(&idle(from), Style::Muted)
            .text(
                &fill.to_string().repeat(to - from),
                Style::Bar(span.kind, span.status),
            )
            .text(&idle(width - to), Style::Muted)
    }

    /// A mark at the time of an event, on an otherwise empty column.
    pub(crate) fn event_mark(&self, time: Timestamp, width: usize) -> Line {
        let at = (self.column(time.micros(), width).floor() as usize).min(width.saturating_sub(1));
        Line::default()
            .text(&" ".repeat(at), Style::Plain)
            .text("•", Style::Muted)
    }
}

/// The spans whose end decides when the trace ends: among the top-level spans the one that ends
/// last, then among its children the one that ends last, and so on down.
pub(crate) fn critical_path(doc: &TraceDoc, axis: &Axis) -> HashSet<SpanId> {
    let ids: HashSet<SpanId> = doc.spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<Option<SpanId>, Vec<&Span>> = HashMap::new();
    for span in &doc.spans {
        let parent = span
            .parent_id
            .filter(|p| ids.contains(p) && *p != span.span_id);
        children.entry(parent).or_default().push(span);
    }
    let mut path = HashSet::new();
    let mut level = None;
    // `max_by_key` keeps the last of equals: of two spans ending together, the later listed.
    while let Some(next) = children
        .get(&level)
        .and_then(|kids| kids.iter().max_by_key(|s| axis.span_end(s)))
    {
        if !path.insert(next.span_id) {
            break;
        }
        level = Some(next.span_id);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_doc;
    use crate::render::theme::Theme;

    #[test]
    fn the_width_is_shared_and_bars_go_below_sixty_columns() {
        assert_eq!(
            Layout::for_width(80),
            Layout {
                width: 80,
                name: 58,
                bar: 20
            }
        );
        assert_eq!(Layout::for_width(120).bar, 30);
        assert_eq!(Layout::for_width(60).bar, BAR_MIN);
        assert_eq!(Layout::for_width(400).bar, BAR_MAX);
        assert!(!Layout::for_width(59).bars());
    }

    #[test]
    fn bars_sit_on_the_time_axis() {
        let doc = sample_doc();
        let axis = Axis::of(&doc);
        let plain = |l: Line| l.paint(&Theme::plain());
        // The trace runs 812.4ms; notify runs from 300ms to 303ms.
        assert_eq!(plain(axis.bar(&doc.spans[4], 20)), "·······!············");
        assert_eq!(plain(axis.bar(&doc.spans[0], 20)), "█···················");
        let mut failed = doc.spans[2].clone();
        failed.status = Status::Error;
        assert_eq!(plain(axis.bar(&failed, 20)), "!!!!!!··············");
        assert_eq!(plain(axis.scale(30)), "0           406.2ms    812.4ms");
        assert_eq!(plain(axis.scale(10)), "0  812.4ms");
    }

    #[test]
    fn the_critical_path_follows_the_last_ending_child() {
        let mut doc = sample_doc();
        let axis = Axis::of(&doc);
        let path = critical_path(&doc, &axis);
        assert_eq!(path, HashSet::from([doc.spans[4].span_id]));
        // Without notify, the validation ends last, and within it the agent, then its call.
        doc.spans.pop();
        let path = critical_path(&doc, &Axis::of(&doc));
        let expected: HashSet<SpanId> = [0, 2, 3].iter().map(|&i| doc.spans[i].span_id).collect();
        assert_eq!(path, expected);
    }
}
