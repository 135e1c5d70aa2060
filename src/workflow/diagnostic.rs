//! A problem found in a workflow file, pointing at `FILE:LINE:COL` with a snippet of the line.

use std::fmt;

use super::schema::Loc;

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
            self.file, self.loc.line, self.loc.col, self.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.headline())?;
        if let Some(text) = &self.line_text {
            let number = self.loc.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs would break the alignment of the caret line.
            let text = text.replace('\t', " ");
            let col = (self.loc.col.max(1) - 1) as usize;
            let available = text.chars().count().saturating_sub(col).max(1);
            let width = self.width.min(available);
            writeln!(f, "{pad} |")?;
            writeln!(f, "{number} | {text}")?;
            writeln!(f, "{pad} | {}{}", " ".repeat(col), "^".repeat(width))?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "  = help: {help}")?;
        }
        Ok(())
    }
}

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
}
