//! The `list` table: one row per trace, newest first, with its short id (the shortest unique
//! tail of its digits, which `show`, `diff`, `export` and `rm` accept: the full id is in
//! `--format json`), with the start time without its year when the width is short.

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use super::theme::Theme;
use super::{human_duration, width_of};
use crate::trace::bound::truncate;
use crate::trace::{Status, Timestamp, Trace};

/// The longest a name or group is shown before it is cut with `…`.
const TEXT_MAX: usize = 40;

/// A borderless table that never wraps, with a bold header when colour is on: the house style
/// of every table agentrace prints.
pub(crate) fn plain_table(theme: &Theme, header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    if theme.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(header.iter().map(|h| {
        let cell = Cell::new(h);
        if theme.color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    table
}

/// `short_id` gives a trace's short id (see `Store::short_id`).
pub fn trace_table(
    traces: &[Trace],
    theme: &Theme,
    width: usize,
    short_id: &dyn Fn(&Trace) -> String,
) -> String {
    if traces.is_empty() {
        return String::from("(no traces)\n");
    }
    let header = [
        "ID", "NAME", "GROUP", "STATUS", "STARTED", "DURATION", "TOKENS",
    ];
    let build = |short: bool| -> Vec<[String; 7]> {
        traces
            .iter()
            .map(|t| {
                [
                    short_id(t),
                    clean(&t.name),
                    clean(t.group_id.as_deref().unwrap_or("-")),
                    t.status.as_str().to_string(),
                    started(t.started_at, short),
                    t.duration_ms()
                        .map_or_else(|| String::from("-"), human_duration),
                    if t.usage.is_zero() {
                        String::from("-")
                    } else {
                        t.usage.total_tokens.to_string()
                    },
                ]
            })
            .collect()
    };
    let mut rows = build(false);
    let (mut name_max, mut group_max) = text_budget(&header, &rows, width);
    if fitted_width(&header, &rows, name_max, group_max) > width {
        rows = build(true);
        (name_max, group_max) = text_budget(&header, &rows, width);
    }

    // Columns never wrap: the id is what people copy, and a wrapped row is hard to scan. Names
    // and groups are cut to the width instead; if even that does not fit, rows run long.
    let mut table = plain_table(theme, &header);
    for (t, [id, name, group, status, started, duration, tokens]) in traces.iter().zip(rows) {
        let status = Cell::new(status);
        let status = match (theme.color, status_color(t.status)) {
            (true, Some(color)) => status.fg(color),
            _ => status,
        };
        table.add_row(vec![
            Cell::new(id),
            Cell::new(truncate(&name, name_max)),
            Cell::new(truncate(&group, group_max)),
            status,
            Cell::new(started),
            Cell::new(duration),
            Cell::new(tokens),
        ]);
    }
    let last = header.len() - 1;
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index == last { 0 } else { GAP }));
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The space between columns.
const GAP: u16 = 2;
/// The narrowest a name or group is cut to.
const NAME_MIN: usize = 8;
const GROUP_MIN: usize = 8;

/// The width of the table with NAME and GROUP cut to the given widths.
fn fitted_width(header: &[&str; 7], rows: &[[String; 7]], name: usize, group: usize) -> usize {
    (0..header.len())
        .map(|i| {
            let widest = rows
                .iter()
                .map(|r| width_of(&r[i]))
                .chain([width_of(header[i])])
                .max()
                .unwrap_or(0);
            match i {
                1 => widest.min(name).max(width_of(header[i])),
                2 => widest.min(group).max(width_of(header[i])),
                _ => widest,
            }
        })
        .sum::<usize>()
        + usize::from(GAP) * (header.len() - 1)
}

/// How wide NAME and GROUP may be for the table to fit `width`.
fn text_budget(header: &[&str; 7], rows: &[[String; 7]], width: usize) -> (usize, usize) {
    let column = |i: usize| {
        rows.iter()
            .map(|r| width_of(&r[i]))
            .chain(header.get(i).map(|h| width_of(h)))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(column).collect();
    let fixed: usize = [0, 3, 4, 5, 6].iter().map(|&i| widths[i]).sum::<usize>()
        + usize::from(GAP) * (header.len() - 1);
    let (name, group) = (widths[1].min(TEXT_MAX), widths[2].min(TEXT_MAX));
    let budget = width.saturating_sub(fixed);
    if name + group <= budget {
        return (name, group);
    }
    // Groups are ids and short; names take what is left.
    let group = group.min(GROUP_MIN.max(budget / 3));
    let name = budget.saturating_sub(group).clamp(NAME_MIN.min(name), name);
    (name, group)
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

/// `2026-11-24 22:19:34`, UTC; `11-24 22:19:34` when `short`.
fn started(ts: Timestamp, short: bool) -> String {
    let format = if short {
        "%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    jiff::Timestamp::from_microsecond(ts.micros())
        .map(|t| t.strftime(format).to_string())
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
        assert_eq!(
            trace_table(&[], &Theme::plain(), 80, &|_| String::new()),
            "(no traces)\n"
        );
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
        let out = trace_table(&[a, b], &Theme::plain(), 200, &|t| t.trace_id.to_string());
        insta::assert_snapshot!(out);
        let short = |t: &Trace| t.trace_id.to_string()[..18].to_string();
        let narrow = trace_table(&[sample_trace()], &Theme::plain(), 80, &short);
        assert!(narrow.contains("trace_0192abcd0000  "), "{narrow}");
        assert!(narrow.contains("  11-29 22:19:34  "), "{narrow}");
        assert!(narrow.lines().all(|l| width_of(l) <= 80), "{narrow}");
        assert!(!narrow.contains('\u{1b}'));
        let coloured = trace_table(&[sample_trace()], &Theme { color: true }, 80, &short);
        assert!(coloured.contains('\u{1b}'));
    }
}
