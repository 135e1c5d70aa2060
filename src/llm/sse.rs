//! Server-sent events (the WHATWG `text/event-stream` format), read from a response body's bytes
//! as they arrive: lines end in LF, CRLF or CR; the `data:` lines of an event join with LF;
//! `event:` names it; comments and other fields are skipped; a blank line dispatches the event,
//! and one without data is no event; a leading byte-order mark is skipped. What is left
//! unfinished at the end of the body is dropped, as browsers do.
//!
//! Each byte is looked at once: a wide fan-out reads thousands of streams at a time, and the
//! general-purpose parser this replaces copied the rest of its buffer after every line.

/// One dispatched event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; empty when there was none (a "message").
    pub event: String,
    pub data: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Turns the chunks of a body ([`Parser::feed`]) into events ([`Parser::next_event`]).
#[derive(Debug, Default)]
pub struct Parser {
    /// What arrived and is not yet read as whole lines, from `start` on.
    pending: Vec<u8>,
    start: usize,
    /// Whether the start of the stream (and any byte-order mark) is behind.
    began: bool,
    /// The last line ended in a CR that was the last byte so far: an LF next belongs to it.
    after_cr: bool,
    event: String,
    /// The data lines so far, each followed by an LF.
    data: String,
}

impl Parser {
    /// Adds the next chunk of the body.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.pending.len() {
            self.pending.clear();
            self.start = 0;
        }
        self.pending.extend_from_slice(bytes);
    }

    /// The next whole event in what was fed, if there is one yet. A line that is not UTF-8 is
    /// an error.
    pub fn next_event(&mut self) -> Result<Option<Event>, std::str::Utf8Error> {
        if !self.began {
            let head = &self.pending[self.start..];
            if head.len() < BOM.len() && BOM.starts_with(head) {
                return Ok(None);
            }
            if head.starts_with(BOM) {
                self.start += BOM.len();
            }
            self.began = true;
        }
        loop {
            if self.after_cr && self.start < self.pending.len() {
                if self.pending[self.start] == b'\n' {
                    self.start += 1;
                }
                self.after_cr = false;
            }
            let rest = &self.pending[self.start..];
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                // No whole line yet: keep only what is left of the buffer.
                self.pending.drain(..self.start);
                self.start = 0;
                return Ok(None);
            };
            let line = std::str::from_utf8(&rest[..end])?;
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            self.after_cr = rest[end] == b'\r' && end + 1 == rest.len();
            let next = self.start + end + if crlf { 2 } else { 1 };
            if line.is_empty() {
                self.start = next;
                if self.data.is_empty() {
                    self.event.clear();
                    continue;
                }
                self.data.pop();
                return Ok(Some(Event {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                }));
            }
            if !line.starts_with(':') {
                let (field, value) = match line.split_once(':') {
                    Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                    None => (line, ""),
                };
                match field {
                    "data" => {
                        // Room for the line and its LF at once (an event's first data line
                        // would otherwise grow the string twice).
                        self.data.reserve(value.len() + 1);
                        self.data.push_str(value);
                        self.data.push('\n');
                    }
                    "event" => value.clone_into(&mut self.event),
                    _ => {}
                }
            }
            self.start = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk);
            while let Some(event) = parser.next_event().unwrap() {
                out.push(event);
            }
        }
        out
    }

    fn event(name: &str, data: &str) -> Event {
        Event {
            event: name.into(),
            data: data.into(),
        }
    }

    const STREAM: &[u8] =
        b"\xEF\xBB\xBF: a comment\r\ndata: {\"a\":1}\r\n\r\nevent: keepalive\ndata:\n\n\
        id: 7\nretry: 10\ndata:  two spaces\ndata:x\rdata\r\r\nevent: nothing\n\ndata: [DONE]\n\n\
        data: unfinished";

    #[test]
    fn events_are_read_as_the_format_says() {
        assert_eq!(
            events_of(&[STREAM]),
            [
                event("", "{\"a\":1}"),
                event("keepalive", ""),
                event("", " two spaces\nx\n"),
                event("", "[DONE]"),
            ]
        );
    }

    #[test]
    fn every_way_of_cutting_the_body_into_chunks_reads_the_same() {
        let whole = events_of(&[STREAM]);
        for cut in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(cut);
            assert_eq!(events_of(&[a, b]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(events_of(&bytes), whole, "byte by byte");
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error_and_a_character_split_across_chunks_is_not() {
        let mut parser = Parser::default();
        parser.feed(b"data: \xff\n\n");
        assert!(parser.next_event().is_err());
        assert_eq!(
            events_of(&[b"data: h\xC3", b"\xA9\n\n"]),
            [event("", "h\u{e9}")]
        );
    }
}
