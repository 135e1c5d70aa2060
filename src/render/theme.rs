//! Colour, decided in one place: `--color`, whether stdout is a terminal, `NO_COLOR` and
//! `TERM=dumb`. Renderers ask the theme to paint a piece of text and never look at the
//! environment themselves.

use owo_colors::OwoColorize;

use crate::trace::{SpanKind, Status};

/// `--color auto|always|never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

/// What a piece of text is, and so how it is painted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Bold,
    /// Secondary information: kinds, tree lines, metadata.
    Muted,
    Status(Status),
    Error,
    /// A span's bar on the waterfall: its kind's colour, or its status's when it did not end
    /// well.
    Bar(SpanKind, Status),
}

impl Theme {
    /// `Auto` colours when the output is a terminal, `NO_COLOR` is unset or empty, and `TERM`
    /// is not `dumb`.
    pub fn detect(choice: ColorChoice, is_tty: bool) -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Theme::decide(choice, is_tty, no_color, dumb)
    }

    fn decide(choice: ColorChoice, is_tty: bool, no_color: bool, dumb_term: bool) -> Theme {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && !no_color && !dumb_term,
        };
        Theme { color }
    }

    pub fn plain() -> Theme {
        Theme { color: false }
    }

    /// `text` with the escape codes of `style`, or `text` as it is without colour.
    pub fn paint(&self, text: &str, style: Style) -> String {
        if !self.color || text.is_empty() {
            return text.to_string();
        }
        match style {
            Style::Plain => text.to_string(),
            Style::Bold => text.bold().to_string(),
            Style::Muted => text.dimmed().to_string(),
            Style::Error => text.red().to_string(),
            Style::Status(status) => match status {
                Status::Ok => text.green().to_string(),
                Status::Error => text.red().bold().to_string(),
                Status::Cancelled => text.yellow().to_string(),
                Status::Skipped => text.dimmed().to_string(),
                Status::Running => text.cyan().to_string(),
            },
            Style::Bar(kind, status) => match status {
                Status::Error => text.red().to_string(),
                Status::Cancelled => text.yellow().to_string(),
                Status::Skipped => text.dimmed().to_string(),
                Status::Ok | Status::Running => match kind {
                    SpanKind::Custom => text.blue().to_string(),
                    SpanKind::Agent => text.magenta().to_string(),
                    SpanKind::Generation => text.cyan().to_string(),
                    SpanKind::Function => text.yellow().to_string(),
                    SpanKind::Handoff => text.bright_magenta().to_string(),
                    SpanKind::Command => text.green().to_string(),
                    SpanKind::Score => text.bright_blue().to_string(),
                    SpanKind::McpTools => text.bright_yellow().to_string(),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_capable_terminal() {
        use ColorChoice::*;
        assert!(Theme::decide(Auto, true, false, false).color);
        assert!(!Theme::decide(Auto, false, false, false).color);
        assert!(!Theme::decide(Auto, true, true, false).color);
        assert!(!Theme::decide(Auto, true, false, true).color);
        assert!(Theme::decide(Always, false, true, true).color);
        assert!(!Theme::decide(Never, true, false, false).color);
    }

    #[test]
    fn no_colour_means_no_escape_codes() {
        let plain = Theme::plain();
        assert_eq!(plain.paint("ok", Style::Status(Status::Ok)), "ok");
        let colour = Theme { color: true };
        assert_eq!(
            colour.paint("ok", Style::Status(Status::Ok)),
            "\u{1b}[32mok\u{1b}[39m"
        );
    }
}
