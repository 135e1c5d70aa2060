//! A line of the tree as styled pieces, fitted to a width before colour is added, so that the
//! same text comes out with and without colour and never runs past the terminal's edge.

use super::theme::{Style, Theme};
use super::width_of;
use crate::trace::bound::truncate;

/// One piece of a line.
struct Seg {
    text: String,
    style: Style,
    /// How far the piece may shrink (with `…`) before pieces at the end go instead; `None`
    /// for pieces that never shrink.
    min: Option<usize>,
}

/// A line as pieces, so that it can be fitted to the width before colour is added.
#[derive(Default)]
pub(crate) struct Line {
    segs: Vec<Seg>,
}

impl Line {
    fn push(mut self, text: &str, style: Style, min: Option<usize>) -> Line {
        if !text.is_empty() {
            self.segs.push(Seg {
                text: text.to_string(),
                style,
                min,
            });
        }
        self
    }

    pub(crate) fn text(self, text: &str, style: Style) -> Line {
        self.push(text, style, None)
    }

    pub(crate) fn flex(self, text: &str, style: Style, min: usize) -> Line {
        self.push(text, style, Some(min))
    }

    /// A field after two spaces.
    pub(crate) fn field(self, text: &str, style: Style) -> Line {
        if text.is_empty() {
            return self;
        }
        self.text("  ", Style::Plain).text(text, style)
    }

    /// A field after two spaces that may be cut down to `…`.
    pub(crate) fn field_flex(self, text: &str, style: Style) -> Line {
        if text.is_empty() {
            return self;
        }
        self.text("  ", Style::Plain).flex(text, style, 1)
    }

    /// Appends the pieces of `other` as they are (already fitted, never cut again).
    pub(crate) fn append(mut self, other: Line) -> Line {
        self.segs.extend(other.segs.into_iter().map(|mut s| {
            s.min = None;
            s
        }));
        self
    }

    pub(crate) fn width(&self) -> usize {
        self.segs.iter().map(|s| width_of(&s.text)).sum()
    }

    /// Shrinks the line to `width` characters: flexible pieces first (down to their minimum),
    /// then pieces from the end (fixed fields whole, text cut).
    pub(crate) fn fit(mut self, width: usize) -> Line {
        let mut over = self.width().saturating_sub(width);
        for seg in self.segs.iter_mut().rev() {
            if over == 0 {
                break;
            }
            if let Some(min) = seg.min {
                let len = width_of(&seg.text);
                let target = len.saturating_sub(over).max(min.min(len));
                if target < len {
                    seg.text = truncate(&seg.text, target);
                    over -= len - target;
                }
            }
        }
        while over > 0 {
            let count = self.segs.len();
            let Some(seg) = self.segs.last_mut() else {
                break;
            };
            let len = width_of(&seg.text);
            // A fixed field is dropped whole ("of…" says nothing); text is cut.
            let whole = seg.min.is_none() && count > 1;
            if len <= over || whole {
                over = over.saturating_sub(len);
                self.segs.pop();
            } else {
                seg.text = truncate(&seg.text, len - over);
                over = 0;
            }
        }
        self.trim_end()
    }

    /// Drops trailing blank pieces, so that no line ends in spaces.
    pub(crate) fn trim_end(mut self) -> Line {
        while let Some(last) = self.segs.last_mut() {
            let trimmed = last.text.trim_end();
            if trimmed.is_empty() {
                self.segs.pop();
            } else {
                last.text.truncate(trimmed.len());
                break;
            }
        }
        self
    }

    /// Pads the line with spaces to `width` characters.
    pub(crate) fn pad(self, width: usize) -> Line {
        let missing = width.saturating_sub(self.width());
        self.text(&" ".repeat(missing), Style::Plain)
    }

    pub(crate) fn paint(&self, theme: &Theme) -> String {
        self.segs
            .iter()
            .map(|s| theme.paint(&s.text, s.style))
            .collect()
    }
}

/// Text from the store may hold newlines or escape sequences; neither may reach the terminal.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` broken into lines of at most `width` characters, at spaces where a line has one;
/// control characters become spaces and the text's own line breaks are kept.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for para in text.lines() {
        let chars: Vec<char> = clean(para).trim_end().chars().collect();
        if chars.is_empty() {
            out.push(String::new());
            continue;
        }
        let mut start = 0;
        while start < chars.len() {
            let rest = &chars[start..];
            if rest.len() <= width {
                out.push(rest.iter().collect());
                break;
            }
            // Break after the last space that fits; a word longer than the line is cut.
            let cut = rest[..=width]
                .iter()
                .rposition(|c| *c == ' ')
                .filter(|&p| p > 0)
                .unwrap_or(width);
            out.push(
                rest[..cut]
                    .iter()
                    .collect::<String>()
                    .trim_end()
                    .to_string(),
            );
            start += cut;
            while chars.get(start) == Some(&' ') {
                start += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert_eq!(wrap("abcdefghijk", 4), ["abcd", "efgh", "ijk"]);
        assert_eq!(wrap("a\n\nb\tc", 10), ["a", "", "b c"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
    }

    #[test]
    fn fitted_lines_end_without_spaces() {
        let line = Line::default()
            .text("name", Style::Plain)
            .text("   ", Style::Plain);
        assert_eq!(line.fit(80).paint(&Theme::plain()), "name");
    }
}
