//! A problem found in a workflow file, pointing at `FILE:LINE:COL` with a snippet of the line.
//!
//! The file may be hostile: its text reaches the terminal only with control characters escaped
//! (an ESC or OSC sequence would drive the terminal), and a long line only as a window around
//! the column, so that a 5 MB line does not become 10 MB of stderr.
//!
//! The wording helpers (`suggest`, `did_you_mean`, `list`) and [`Loc`] live here too: parsing and
//! validation both report problems, and with the helpers in a leaf of their own neither has to
//! import the other.

use std::fmt;

/// A 1-based line and column in the workflow file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    pub loc: Loc,
    /// Lowercase, no trailing period.
    pub message: String,
    /// A hint on how to fix it, printed after the snippet.
    pub help: Option<String>,
    /// The source line the location points into, if known.
    pub line_text: Option<String>,
    /// How many characters to underline (at least one).
    pub width: usize,
}

impl Diagnostic {
    pub fn new(file: impl Into<String>, loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            loc,
            message: message.into(),
            help: None,
            line_text: None,
            width: 1,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn width(mut self, width: usize) -> Self {
        self.width = width.max(1);
        self
    }

    /// Fills in the snippet from the file's text.
    pub fn with_source(mut self, source: &str) -> Self {
        if self.loc.line > 0 {
            self.line_text = source
                .lines()
                .nth(self.loc.line as usize - 1)
                .map(|l| l.trim_end_matches('\r').to_string());
        }
        self
    }

    /// `FILE:LINE:COL: message`, the first line of the rendering.
    pub fn headline(&self) -> String {
        format!(
            "{}:{}:{}: {}",
            printable(&self.file, MESSAGE_CHARS),
            self.loc.line,
            self.loc.col,
            printable(&self.message, MESSAGE_CHARS)
        )
    }
}

/// How many characters of a source line a snippet shows at most.
const SNIPPET_CHARS: usize = 120;

/// How many characters of a message or help text are shown at most.
const MESSAGE_CHARS: usize = 1000;

/// One character as shown: control characters escaped (`\u{1b}`), a tab as one space (so the
/// caret line stays aligned).
fn shown(c: char) -> String {
    match c {
        '\t' => " ".to_string(),
        c if c.is_control() => c.escape_default().to_string(),
        c => c.to_string(),
    }
}

/// Text from the file made safe for a terminal, and cut to `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        out.push_str(&shown(c));
    }
    out
}

/// The shown line, the caret's offset in it and the caret's width: a window of
/// [`SNIPPET_CHARS`] around the column, `…` where the line goes on.
fn window(text: &str, col: usize, width: usize) -> (String, usize, usize) {
    let len = text.chars().count();
    let col = col.min(len.saturating_sub(1));
    let width = width.min(len.saturating_sub(col)).max(1);
    let start = if len <= SNIPPET_CHARS {
        0
    } else {
        col.saturating_sub(SNIPPET_CHARS / 3)
            .min(len - SNIPPET_CHARS)
    };
    let end = (start + SNIPPET_CHARS).min(len);
    // Only the window's characters are looked at closely.
    let cells: Vec<String> = text
        .chars()
        .skip(start)
        .take(end - start)
        .map(shown)
        .collect();
    let offset = |from: usize, to: usize| -> usize {
        cells[from - start..to - start]
            .iter()
            .map(|s| s.chars().count())
            .sum()
    };
    let mut line = String::new();
    let mut caret = offset(start, col);
    if start > 0 {
        line.push('…');
        caret += 1;
    }
    line.push_str(&cells.concat());
    if end < len {
        line.push('…');
    }
    let shown_width = offset(col, (col + width).min(end)).max(1);
    (line, caret, shown_width)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if let Some(text) = &self.line_text {
            let number = self.loc.line.to_string();
            let pad = " ".repeat(number.len());
            let col = (self.loc.col.max(1) - 1) as usize;
            let (line, caret, width) = window(text, col, self.width);
            writeln!(f, "{pad} |")?;
            writeln!(f, "{number} | {line}")?;
            writeln!(f, "{pad} | {}{}", " ".repeat(caret), "^".repeat(width))?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "  = help: {}", printable(help, MESSAGE_CHARS))?;
        }
        Ok(())
    }
}

/// The closest candidate to a misspelt word: within edit distance 2 (and less than the word's
/// length), or one being a prefix of the other.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let c = candidate.to_lowercase();
        let distance = edit_distance(&lower, &c);
        let close = distance <= 2 && distance < lower.chars().count();
        let prefix = lower.len() >= 2 && (c.starts_with(&lower) || lower.starts_with(&c));
        let score = if close {
            distance
        } else if prefix {
            3
        } else {
            continue;
        };
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

/// "; did you mean `x`?" when there is a close match (part of the message, so that it shows in
/// the one-line `FILE:LINE:COL: message` form too).
pub(crate) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// A list of names for a help line: "`a`, `b`, `c`".
pub(crate) fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<T> {
    pub value: T,
    pub loc: Loc,
}

impl<T> Located<T> {
    pub fn new(value: T, loc: Loc) -> Self {
        Located { value, loc }
    }
}

impl Located<String> {
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// A YAML value kept as JSON (attributes, metadata, vars), with string leaves that may be
/// templates. The location is that of the value as a whole.
pub type LocatedValue = Located<serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_snippet_and_help() {
        let d = Diagnostic::new("w.yaml", Loc { line: 2, col: 3 }, "unknown key `inptu`")
            .width(5)
            .help("did you mean `input`?")
            .with_source("steps:\n  inptu: x\n");
        assert_eq!(
            d.to_string(),
            "w.yaml:2:3: unknown key `inptu`\n  |\n2 |   inptu: x\n  |   ^^^^^\n  = help: did you mean `input`?\n"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_the_caret_still_points_at_the_column() {
        let d = Diagnostic::new("w.yaml", Loc { line: 1, col: 15 }, "bad \u{1b}[31mkey")
            .width(3)
            .with_source("a: \u{1b}]0;pwned\u{7}\tbad\n");
        let text = d.to_string();
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert_eq!(
            text,
            "w.yaml:1:15: bad \\u{1b}[31mkey\n  |\n1 | a: \\u{1b}]0;pwned\\u{7} bad\n  |                        ^^^\n"
        );
    }

    #[test]
    fn a_long_line_is_cut_to_a_window_around_the_column() {
        let line = format!("{}XYZ{}", "a".repeat(5_000_000), "b".repeat(5_000_000));
        let d = Diagnostic::new(
            "w.yaml",
            Loc {
                line: 1,
                col: 5_000_001,
            },
            "here",
        )
        .width(3)
        .with_source(&line);
        let text = d.to_string();
        assert!(text.len() < 600, "{} bytes", text.len());
        let lines: Vec<&str> = text.lines().collect();
        let shown = lines[2].strip_prefix("1 | ").unwrap_or_default();
        let caret = lines[3].strip_prefix("  | ").unwrap_or_default();
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(shown.chars().count(), 122);
        let at = caret.find('^').unwrap_or_default();
        let picked: String = shown.chars().skip(at).take(3).collect();
        assert_eq!(picked, "XYZ");
        assert_eq!(caret.trim_start(), "^^^");
    }
}
