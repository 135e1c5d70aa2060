//! The live area at the bottom of a terminal that `run`'s progress redraws in place.
//!
//! Drawn the way that survives a terminal being resized: every line is cut to the width the
//! terminal has *now* (read again at each draw) less one column, so that no line can wrap, and
//! ends with `\n` rather than being padded with spaces to the edge. A padded line fills the row,
//! so a terminal narrowed under it rewraps every line into two and the next redraw, going back
//! over as many rows as it drew, lands in the middle of the old view. Lines ending with `\n` also
//! leave the cursor at the start of an empty row, so whatever stops the drawing (the end of the
//! run, a crash, Ctrl-C) leaves the shell prompt on a line of its own.
//!
//! To go back over the area it drew, a redraw moves the cursor up (`ESC [ n A`) and erases to
//! the end of the screen (`ESC [ J`). When the terminal got narrower since the last draw, it
//! counts the rows the old lines take once rewrapped at the new width: terminals that reflow on
//! resize (VTE, kitty, iTerm2, Windows Terminal, tmux) rewrap them, and the lines were never
//! wider than the old width, so nothing is counted twice.

use std::io::Write;

use super::line::Line;
use super::theme::Theme;

/// The terminal's `(columns, rows)` at this moment, if known.
type SizeFn = Box<dyn Fn() -> Option<(usize, usize)> + Send>;

/// What is drawn on a terminal, and how much of it the next draw goes back over.
pub(crate) struct Screen {
    out: Box<dyn Write + Send>,
    size: SizeFn,
    /// The widths of the live lines now on screen (the lines that stay are not counted).
    drawn: Vec<usize>,
    /// The terminal's width when they were drawn.
    drawn_at: usize,
}

/// The width assumed when the terminal does not say.
const FALLBACK_WIDTH: usize = 80;

impl Screen {
    /// The process's stderr, its size read from the terminal at every draw.
    pub(crate) fn stderr() -> Screen {
        Screen::new(
            Box::new(std::io::stderr()),
            Box::new(|| {
                terminal_size::terminal_size_of(std::io::stderr()).map(
                    |(terminal_size::Width(w), terminal_size::Height(h))| {
                        (usize::from(w), usize::from(h))
                    },
                )
            }),
        )
    }

    pub(crate) fn new(out: Box<dyn Write + Send>, size: SizeFn) -> Screen {
        Screen {
            out,
            size,
            drawn: Vec::new(),
            drawn_at: FALLBACK_WIDTH,
        }
    }

    /// The terminal's width now.
    pub(crate) fn width(&self) -> usize {
        (self.size)()
            .map(|(w, _)| w)
            .filter(|&w| w > 0)
            .unwrap_or(FALLBACK_WIDTH)
    }

    /// The terminal's height now, if known.
    pub(crate) fn height(&self) -> Option<usize> {
        (self.size)().map(|(_, h)| h).filter(|&h| h > 0)
    }

    /// Whether a live area is on screen.
    pub(crate) fn is_drawn(&self) -> bool {
        !self.drawn.is_empty()
    }

    /// Replaces the live area with `above` (lines that stay, printed once) followed by `live`
    /// (the new live area, replaced by the next draw). Every line is fitted to the width first.
    pub(crate) fn draw(&mut self, above: Vec<Line>, live: Vec<Line>, theme: &Theme) {
        let width = self.width();
        let room = width.saturating_sub(1).max(1);
        let mut buf = String::new();
        let up = self.rows_drawn(width);
        if up > 0 {
            buf.push_str(&format!("\u{1b}[{up}A"));
        }
        if up > 0 || !self.drawn.is_empty() {
            buf.push_str("\r\u{1b}[J");
        }
        for line in above {
            buf.push_str(&line.fit(room).paint(theme));
            buf.push('\n');
        }
        let mut drawn = Vec::with_capacity(live.len());
        for line in live {
            let line = line.fit(room);
            drawn.push(line.width());
            buf.push_str(&line.paint(theme));
            buf.push('\n');
        }
        // A terminal that went away cannot be drawn on; the run goes on regardless.
        let _ = self.out.write_all(buf.as_bytes());
        let _ = self.out.flush();
        self.drawn = drawn;
        self.drawn_at = width;
    }

    /// The rows the live area takes now, at `width`: one per line, more for a line that a
    /// narrower terminal has rewrapped.
    fn rows_drawn(&self, width: usize) -> usize {
        if width >= self.drawn_at {
            return self.drawn.len();
        }
        self.drawn.iter().map(|&w| w.max(1).div_ceil(width)).sum()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::render::theme::Style;

    /// What a screen wrote, and a size the test can change.
    #[derive(Clone, Default)]
    pub(crate) struct Fake {
        pub(crate) out: Arc<Mutex<Vec<u8>>>,
        pub(crate) size: Arc<Mutex<(usize, usize)>>,
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Fake {
        pub(crate) fn screen(width: usize, height: usize) -> (Fake, Screen) {
            let fake = Fake::default();
            *fake.size.lock().unwrap() = (width, height);
            let size = fake.size.clone();
            let screen = Screen::new(
                Box::new(fake.clone()),
                Box::new(move || Some(*size.lock().unwrap())),
            );
            (fake, screen)
        }

        /// Everything written since the last call.
        pub(crate) fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.out.lock().unwrap())).unwrap()
        }
    }

    fn line(text: &str) -> Line {
        Line::default().text(text, Style::Plain)
    }

    #[test]
    fn lines_end_with_newlines_are_never_padded_and_never_reach_the_edge() {
        let (fake, mut screen) = Fake::screen(20, 10);
        screen.draw(
            vec![line("done")],
            vec![line("short"), line(&"x".repeat(30))],
            &Theme::plain(),
        );
        let out = fake.take();
        assert_eq!(out, format!("done\nshort\n{}…\n", "x".repeat(18)));
        // The next draw goes back over the two live lines only.
        screen.draw(vec![], vec![line("one")], &Theme::plain());
        assert_eq!(fake.take(), "\u{1b}[2A\r\u{1b}[Jone\n");
        // Nothing live: the area is erased and stays so.
        screen.draw(vec![line("end")], vec![], &Theme::plain());
        assert_eq!(fake.take(), "\u{1b}[1A\r\u{1b}[Jend\n");
        assert!(!screen.is_drawn());
        screen.draw(vec![line("after")], vec![], &Theme::plain());
        assert_eq!(fake.take(), "after\n");
    }

    #[test]
    fn a_narrowed_terminal_is_redrawn_at_its_new_width_over_the_rewrapped_rows() {
        let (fake, mut screen) = Fake::screen(60, 10);
        let long = "a".repeat(50);
        screen.draw(vec![], vec![line(&long), line("b")], &Theme::plain());
        fake.take();
        *fake.size.lock().unwrap() = (20, 10);
        screen.draw(vec![], vec![line(&long), line("b")], &Theme::plain());
        let out = fake.take();
        // 50 columns rewrap into 3 rows of 20, and `b` takes one.
        assert_eq!(out, format!("\u{1b}[4A\r\u{1b}[J{}…\nb\n", "a".repeat(18)));
        // Wider again: the lines drawn at 20 columns take a row each.
        *fake.size.lock().unwrap() = (100, 10);
        screen.draw(vec![], vec![], &Theme::plain());
        assert!(fake.take().starts_with("\u{1b}[2A"));
    }
}
