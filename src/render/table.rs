//! The `list` table: one row per trace, newest first, with its short id (the shortest unique
//! tail of its digits, which `show`, `diff`, `export` and `rm` accept: the full id is in
//! `--format json`), with the start time without its year when the width is short.

use super::theme::{Style, Theme};
use super::{human_duration, width_of};
use crate::trace::bound::truncate;
use crate::trace::{Timestamp, Trace};
use jiff::tz::TimeZone;

/// The space between columns.
const GAP: usize = 2;

/// One column of a [`Grid`]: its header, its alignment, and what it gives up when the table is
/// wider than the terminal: first the shrinkable columns are cut (lowest rank first, with `…`,
/// down to their `keep` width), then the droppable ones go (lowest rank first), then the
/// shrinkable ones are cut down to their minimum.
pub(crate) struct Column {
    header: String,
    right: bool,
    shrink: Option<(u8, usize)>,
    /// Cut below this only once every droppable column is gone.
    keep: usize,
    drop: Option<u8>,
    cut_start: bool,
}

impl Column {
    /// Text, aligned left.
    pub(crate) fn left(header: &str) -> Column {
        Column {
            header: header.to_string(),
            right: false,
            shrink: None,
            keep: 0,
            drop: None,
            cut_start: false,
        }
    }

    /// Numbers, aligned right.
    pub(crate) fn right(header: &str) -> Column {
        Column {
            right: true,
            ..Column::left(header)
        }
    }

    /// Cut to as narrow as `min` when the table does not fit; columns of a lower `rank` first.
    pub(crate) fn shrink(self, rank: u8, min: usize) -> Column {
        Column {
            shrink: Some((rank, min)),
            ..self
        }
    }

    /// Not cut below `keep` while a droppable column is left: what a column is worth more
    /// than the droppable ones.
    pub(crate) fn keep(self, keep: usize) -> Column {
        Column { keep, ..self }
    }

    /// Left out when cutting is not enough; columns of a lower `rank` first.
    pub(crate) fn drop(self, rank: u8) -> Column {
        Column {
            drop: Some(rank),
            ..self
        }
    }

    /// Cut at the start (`…/parent/child`): for paths, whose end says the most.
    pub(crate) fn cut_start(self) -> Column {
        Column {
            cut_start: true,
            ..self
        }
    }
}

/// A cell: its text (control characters are shown as spaces) and its style.
pub(crate) struct Text(String, Style);

impl Text {
    pub(crate) fn styled(text: impl Into<String>, style: Style) -> Text {
        Text(text.into(), style)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(text, Style::Plain)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(text.to_string(), Style::Plain)
    }
}

/// A borderless table fitted to a width, the house style of every table agentrace prints: the
/// header in bold when colour is on, two spaces between columns, no trailing blanks, never
/// wrapped (a wrapped row is hard to scan, and ids are copied from it). Names are cut before
/// anything is dropped; every line, header included, is as wide as the widest row.
pub(crate) struct Grid<'t> {
    theme: &'t Theme,
    columns: Vec<Column>,
    rows: Vec<Vec<Text>>,
}

impl<'t> Grid<'t> {
    pub(crate) fn new(theme: &'t Theme, columns: Vec<Column>) -> Grid<'t> {
        Grid {
            theme,
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row of one cell per column (missing cells are empty, extra ones ignored).
    pub(crate) fn row(&mut self, cells: Vec<Text>) {
        let cells = cells
            .into_iter()
            .map(|Text(text, style)| Text(text.replace(char::is_control, " "), style))
            .collect();
        self.rows.push(cells);
    }

    /// The width of each column with nothing cut.
    fn natural(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|Text(t, _)| width_of(t))
                    .chain([width_of(&c.header)])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// How wide the table is with nothing cut or dropped.
    pub(crate) fn natural_width(&self) -> usize {
        let natural = self.natural();
        natural.iter().sum::<usize>() + GAP * natural.len().saturating_sub(1)
    }

    /// The columns' widths for `width`: `None` for a dropped column.
    fn widths(&self, width: usize) -> Vec<Option<usize>> {
        let natural = self.natural();
        let mut shown: Vec<bool> = vec![true; natural.len()];
        let mut by_shrink: Vec<usize> = (0..natural.len())
            .filter(|&i| self.columns[i].shrink.is_some())
            .collect();
        by_shrink.sort_by_key(|&i| self.columns[i].shrink.map(|(rank, _)| rank));
        let mut by_drop: Vec<usize> = (0..natural.len())
            .filter(|&i| self.columns[i].drop.is_some())
            .collect();
        by_drop.sort_by_key(|&i| self.columns[i].drop);
        let mut drops = by_drop.into_iter();
        let mut last_resort = false;
        loop {
            let mut widths = natural.clone();
            let count = shown.iter().filter(|s| **s).count();
            let total = (0..widths.len())
                .filter(|&i| shown[i])
                .map(|i| widths[i])
                .sum::<usize>()
                + GAP * count.saturating_sub(1);
            let mut excess = total.saturating_sub(width);
            for &i in by_shrink.iter().filter(|&&i| shown[i]) {
                let column = &self.columns[i];
                let min = column.shrink.map_or(widths[i], |(_, min)| min);
                let min = if last_resort {
                    min
                } else {
                    min.max(column.keep)
                };
                let take = excess.min(widths[i].saturating_sub(min));
                widths[i] -= take;
                excess -= take;
            }
            if excess == 0 || last_resort {
                // When even that is too wide, the rows run long rather than lose more.
                return widths
                    .into_iter()
                    .zip(&shown)
                    .map(|(w, s)| s.then_some(w))
                    .collect();
            }
            match drops.next() {
                Some(i) => shown[i] = false,
                None => last_resort = true,
            }
        }
    }

    /// The table's lines, no wider than `width` when cutting and dropping can make it so.
    pub(crate) fn render(&self, width: usize) -> String {
        let widths = self.widths(width);
        let header: Vec<Text> = self
            .columns
            .iter()
            .map(|c| Text(c.header.clone(), Style::Bold))
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            let mut first = true;
            for (i, column) in self.columns.iter().enumerate() {
                let Some(w) = widths[i] else { continue };
                if !first {
                    line.push_str(&" ".repeat(GAP));
                }
                first = false;
                let (text, style) = row.get(i).map_or(("", Style::Plain), |Text(t, s)| (t, *s));
                let text = if width_of(text) <= w {
                    text.to_string()
                } else if column.cut_start {
                    let tail: String = text.chars().skip(width_of(text) + 1 - w).collect();
                    format!("…{}", tail.trim_start())
                } else {
                    cut(text, w)
                };
                let pad = " ".repeat(w.saturating_sub(width_of(&text)));
                let painted = self.theme.paint(&text, style);
                if column.right {
                    line.push_str(&pad);
                    line.push_str(&painted);
                } else {
                    line.push_str(&painted);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `text` cut to `width` columns with `…` (`A workflow with…`, not `A workflow with …`).
pub(crate) fn cut(text: &str, width: usize) -> String {
    let cut = truncate(text, width);
    match cut.strip_suffix('…') {
        Some(kept) if kept.ends_with(' ') => format!("{}…", kept.trim_end()),
        _ => cut,
    }
}

/// Pieces of a line of text (a heading, totals) joined by two spaces, onto as few lines as
/// `width` allows: a piece that does not fit on a line starts the next, and a piece wider than
/// a whole line is cut with `…`. Each line ends with a newline.
pub(crate) fn pack(pieces: &[String], width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for piece in pieces.iter().filter(|p| !p.is_empty()) {
        let piece = cut(&piece.replace(char::is_control, " "), width);
        match lines.last_mut() {
            Some(last) if width_of(last) + GAP + width_of(&piece) <= width => {
                last.push_str(&" ".repeat(GAP));
                last.push_str(&piece);
            }
            _ => lines.push(piece),
        }
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `short_id` gives a trace's short id (see `Store::short_id`). At the width: the year of the
/// start goes first, then the group and the name are cut (the name to 16 columns), then the
/// group, the tokens and the cost are dropped, in that order, and last the name is cut to 10.
pub fn trace_table(
    traces: &[Trace],
    theme: &Theme,
    width: usize,
    tz: &TimeZone,
    short_id: &dyn Fn(&Trace) -> String,
) -> String {
    if traces.is_empty() {
        return String::from("(no traces)\n");
    }
    let ids: Vec<String> = traces.iter().map(short_id).collect();
    let times: Vec<Option<Timestamp>> = traces.iter().map(|t| Some(t.started_at)).collect();
    let grid = |short: bool| {
        let (started, cells) = start_column(&times, tz, short);
        let mut grid = Grid::new(
            theme,
            vec![
                Column::left("ID"),
                Column::left("NAME").shrink(2, NAME_MIN).keep(NAME_KEEP),
                Column::left("GROUP").shrink(1, GROUP_MIN).drop(1),
                Column::left("STATUS"),
                Column::left(&started),
                Column::right("DURATION"),
                Column::right("TOKENS").drop(2),
                Column::right("COST").drop(3),
            ],
        );
        for ((t, id), started) in traces.iter().zip(&ids).zip(cells) {
            grid.row(vec![
                id.as_str().into(),
                truncate(&t.name, TEXT_MAX).into(),
                truncate(t.group_id.as_deref().unwrap_or("-"), TEXT_MAX).into(),
                Text::styled(t.status.as_str(), Style::Status(t.status)),
                started.into(),
                t.duration_ms()
                    .map_or_else(|| String::from("-"), human_duration)
                    .into(),
                if t.usage.is_zero() {
                    String::from("-")
                } else {
                    t.usage.total_tokens.to_string()
                }
                .into(),
                // An offline run costs nothing by construction: say why instead.
                if t.is_offline() {
                    Text::styled("offline", Style::Muted)
                } else {
                    super::cost(t.cost_usd).into()
                },
            ]);
        }
        grid
    };
    // The year goes before any name is cut.
    let long = grid(false);
    if long.natural_width() <= width {
        return long.render(width);
    }
    grid(true).render(width)
}

/// The longest a name or group is shown before it is cut with `…`, however wide the terminal.
const TEXT_MAX: usize = 40;
/// The narrowest a name is cut to while the group, tokens or cost could go instead.
const NAME_KEEP: usize = 16;
/// The narrowest a name or group is cut to.
const NAME_MIN: usize = 10;
const GROUP_MIN: usize = 8;

/// A column of start times in `tz` (the terminal's zone, UTC under CI: see the CLI's
/// `Globals::time_zone`): its header, and its cells, `2026-11-24 22:19:34` or without the
/// year when `short`. The header names the zone (`STARTED UTC`, `STARTED +05:30`) when every
/// time has the same offset; across a daylight-saving change each time carries its own.
pub(crate) fn start_column(
    times: &[Option<Timestamp>],
    tz: &TimeZone,
    short: bool,
) -> (String, Vec<String>) {
    let zoned: Vec<Option<jiff::Zoned>> = times
        .iter()
        .map(|t| {
            t.and_then(|t| jiff::Timestamp::from_microsecond(t.micros()).ok())
                .map(|t| t.to_zoned(tz.clone()))
        })
        .collect();
    let mut offsets = zoned.iter().flatten().map(jiff::Zoned::offset);
    let first = offsets.next();
    let one = first.filter(|o| offsets.all(|other| other == *o));
    let format = if short {
        "%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let cells = zoned
        .iter()
        .map(|z| match (z, one) {
            (None, _) => String::from("-"),
            (Some(z), Some(_)) => z.strftime(format).to_string(),
            (Some(z), None) => z.strftime(&format!("{format} %:z")).to_string(),
        })
        .collect();
    let header = match one {
        Some(o) if o == jiff::tz::Offset::UTC => String::from("STARTED UTC"),
        Some(o) => {
            let sign = if o.is_negative() { '-' } else { '+' };
            let minutes = o.seconds().unsigned_abs() / 60;
            format!("STARTED {sign}{:02}:{:02}", minutes / 60, minutes % 60)
        }
        None => String::from("STARTED"),
    };
    (header, cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_trace;
    use crate::trace::Status;

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(
            trace_table(&[], &Theme::plain(), 80, &TimeZone::UTC, &|_| String::new()),
            "(no traces)\n"
        );
    }

    #[test]
    fn traces_are_rows_with_short_ids_and_costs() {
        let a = sample_trace();
        let mut b = sample_trace();
        b.name = "Nightly".into();
        b.group_id = None;
        b.status = Status::Running;
        b.ended_at = None;
        b.usage = Default::default();
        b.cost_usd = None;
        let short = |t: &Trace| t.trace_id.hex()[26..].to_string();
        let out = trace_table(&[a, b], &Theme::plain(), 200, &TimeZone::UTC, &short);
        insta::assert_snapshot!(out);
        let coloured = trace_table(
            &[sample_trace()],
            &Theme { color: true },
            80,
            &TimeZone::UTC,
            &short,
        );
        assert!(coloured.contains('\u{1b}'));
    }

    #[test]
    fn at_80_and_60_columns_names_are_cut_last_and_no_line_is_wider() {
        let mut t = sample_trace();
        t.name = "A workflow with a rather long descriptive name".into();
        t.group_id = Some("conversation-0042-of-the-support-desk".into());
        let short = |t: &Trace| t.trace_id.hex()[26..].to_string();
        let at = |width: usize| {
            let out = trace_table(&[t.clone()], &Theme::plain(), width, &TimeZone::UTC, &short);
            for line in out.lines() {
                assert!(width_of(line) <= width, "{width}: {line:?}");
            }
            out
        };
        let wide = at(160);
        assert!(wide.contains("  2026-11-29 22:19:34  "), "{wide}");
        let eighty = at(80);
        // The group goes before the name is cut below 20 columns.
        assert!(
            eighty.starts_with("ID      NAME                 STATUS  "),
            "{eighty}"
        );
        assert!(
            eighty.contains("\n000042  A workflow with a…   ok      "),
            "{eighty}"
        );
        assert!(eighty.contains("  11-29 22:19:34  "), "{eighty}");
        let sixty = at(60);
        assert!(
            !sixty.contains("GROUP") && !sixty.contains("TOKENS"),
            "{sixty}"
        );
        assert!(sixty.contains("A workflow with a…"), "{sixty}");
    }

    #[test]
    fn start_times_are_in_the_zone_given_and_say_which() {
        // 2026-11-29 22:19:34 UTC, and the same time in July.
        let november = Timestamp(1_795_990_774_000_000);
        let july = Timestamp(1_795_990_774_000_000 - 140 * 86_400_000_000);
        let times = [Some(november), None];
        let (header, cells) = start_column(&times, &TimeZone::UTC, false);
        assert_eq!(
            (header.as_str(), cells[0].as_str()),
            ("STARTED UTC", "2026-11-29 22:19:34")
        );
        assert_eq!(cells[1], "-");
        let kolkata = TimeZone::fixed(
            jiff::tz::Offset::from_seconds(19_800).unwrap_or(jiff::tz::Offset::UTC),
        );
        let (header, cells) = start_column(&times, &kolkata, true);
        assert_eq!(
            (header.as_str(), cells[0].as_str()),
            ("STARTED +05:30", "11-30 03:49:34")
        );
        // Across a daylight-saving change, each time says its offset.
        let berlin = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let (header, cells) = start_column(&[Some(november), Some(july)], &berlin, true);
        assert_eq!(header, "STARTED");
        assert_eq!(cells, ["11-29 23:19:34 +01:00", "07-13 00:19:34 +02:00"]);
    }

    #[test]
    fn packed_pieces_start_a_new_line_when_they_do_not_fit() {
        let pieces = [
            "12 runs".to_string(),
            "3 failed".into(),
            "a very long piece".into(),
        ];
        assert_eq!(pack(&pieces, 80), "12 runs  3 failed  a very long piece\n");
        assert_eq!(pack(&pieces, 20), "12 runs  3 failed\na very long piece\n");
        assert_eq!(pack(&pieces, 10), "12 runs\n3 failed\na very lo…\n");
    }

    #[test]
    fn a_grid_cuts_then_drops_and_its_header_is_no_wider_than_its_rows() {
        let theme = Theme::plain();
        let mut grid = Grid::new(
            &theme,
            vec![
                Column::left("PATH").shrink(1, 8).cut_start(),
                Column::right("NUMBER"),
                Column::left("EXTRA").drop(1),
            ],
        );
        grid.row(vec![
            "root/child/grandchild".into(),
            "12".into(),
            "x".into(),
        ]);
        assert_eq!(
            grid.render(80),
            "PATH                   NUMBER  EXTRA\nroot/child/grandchild      12  x\n"
        );
        assert_eq!(
            grid.render(30),
            "PATH             NUMBER  EXTRA\n…ild/grandchild      12  x\n"
        );
        assert_eq!(grid.render(16), "PATH      NUMBER\n…ndchild      12\n");
        // Nothing left to give: the rows run long rather than lose their numbers.
        assert_eq!(grid.render(4), "PATH      NUMBER\n…ndchild      12\n");
    }
}
