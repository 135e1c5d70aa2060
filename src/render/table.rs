//! The `list` table: one row per trace, newest first, with the full id so that it can be copied
//! into `show` or `export`.

use comfy_table::{Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, presets};

use super::theme::Theme;
use super::{human_duration, truncate};
use crate::trace::{Status, Timestamp, Trace};

/// The longest a name or group is shown before it is cut with `…`.
const TEXT_MAX: usize = 40;

pub fn trace_table(traces: &[Trace], theme: &Theme, width: usize) -> String {
    if traces.is_empty() {
        return String::from("(no traces)\n");
    }
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(u16::try_from(width).unwrap_or(u16::MAX));
    if theme.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    let header = [
        "ID", "NAME", "GROUP", "STATUS", "STARTED", "DURATION", "TOKENS",
    ];
    table.set_header(header.map(|h| {
        let cell = Cell::new(h);
        if theme.color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    for t in traces {
        let status = Cell::new(t.status.as_str());
        let status = match (theme.color, status_color(t.status)) {
            (true, Some(color)) => status.fg(color),
            _ => status,
        };
        table.add_row(vec![
            Cell::new(t.trace_id.to_string()),
            Cell::new(truncate(&clean(&t.name), TEXT_MAX)),
            Cell::new(truncate(
                &clean(t.group_id.as_deref().unwrap_or("-")),
                TEXT_MAX,
            )),
            status,
            Cell::new(started(t.started_at)),
            Cell::new(
                t.duration_ms()
                    .map_or_else(|| String::from("-"), human_duration),
            ),
            Cell::new(if t.usage.is_zero() {
                String::from("-")
            } else {
                t.usage.total_tokens.to_string()
            }),
        ]);
    }
    // The id, status and time never wrap: they are what people copy and scan.
    for (index, constraint) in [
        (0, ColumnConstraint::ContentWidth),
        (3, ColumnConstraint::ContentWidth),
        (4, ColumnConstraint::ContentWidth),
    ] {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(constraint);
        }
    }
    if let Some(column) = table.column_mut(0) {
        column.set_padding((0, 1));
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn status_color(status: Status) -> Option<Color> {
    match status {
        Status::Ok => Some(Color::Green),
        Status::Error => Some(Color::Red),
        Status::Cancelled => Some(Color::Yellow),
        Status::Running => Some(Color::Cyan),
        Status::Skipped => Some(Color::DarkGrey),
    }
}

/// `2026-11-24 22:19:34`, UTC.
fn started(ts: Timestamp) -> String {
    jiff::Timestamp::from_microsecond(ts.micros())
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| String::from("-"))
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_trace;

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(trace_table(&[], &Theme::plain(), 80), "(no traces)\n");
    }

    #[test]
    fn traces_are_rows_with_full_ids() {
        let a = sample_trace();
        let mut b = sample_trace();
        b.name = "Nightly".into();
        b.group_id = None;
        b.status = Status::Running;
        b.ended_at = None;
        b.usage = Default::default();
        let out = trace_table(&[a, b], &Theme::plain(), 200);
        assert_eq!(
            out,
            "\
ID                                      NAME                                GROUP       STATUS   STARTED              DURATION  TOKENS
trace_0192abcd000000000000000000000042  Customer Support - Initial Inquiry  conv_12345  ok       2026-11-29 22:19:34  812.4ms   460
trace_0192abcd000000000000000000000042  Nightly                             -           running  2026-11-29 22:19:34  -         -
"
        );
        let narrow = trace_table(&[sample_trace()], &Theme::plain(), 80);
        assert!(
            narrow.contains("trace_0192abcd000000000000000000000042"),
            "{narrow}"
        );
        assert!(!narrow.contains('\u{1b}'));
        let coloured = trace_table(&[sample_trace()], &Theme { color: true }, 80);
        assert!(coloured.contains('\u{1b}'));
    }
}
