//! Trace and span ids in the OpenAI Agents SDK's text form, which carry the OTLP binary ids.
//!
//! A trace id is `trace_` + 32 lowercase hex digits (the 16-byte OTLP trace id, time-ordered
//! because it comes from a UUIDv7); a span id is `span_` + 16 lowercase hex digits (the 8-byte
//! OTLP span id, random and never zero).

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        let [hi, lo] = hex_pair(b);
        s.push(char::from(hi));
        s.push(char::from(lo));
    }
    s
}

/// A byte's two lowercase hex digits. By table: a `format!` per byte made formatting ids a
/// tenth of the store writer's time.
fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]
}

/// An id's text form on the stack (`trace_…` is 38 bytes, `span_…` 21): the store binds
/// two or three ids per span it writes, and a `String` for each was an allocation and a
/// trip through the formatter.
#[derive(Clone, Copy)]
pub struct IdText<const N: usize>([u8; N]);

impl<const N: usize> IdText<N> {
    fn new(prefix: &str, bytes: &[u8]) -> Self {
        debug_assert_eq!(prefix.len() + bytes.len() * 2, N);
        let mut out = [0u8; N];
        out[..prefix.len()].copy_from_slice(prefix.as_bytes());
        for (i, &b) in bytes.iter().enumerate() {
            let at = prefix.len() + i * 2;
            out[at..at + 2].copy_from_slice(&hex_pair(b));
        }
        IdText(out)
    }

    pub fn as_str(&self) -> &str {
        // Built from an ASCII prefix and hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> std::ops::Deref for IdText<N> {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> fmt::Display for IdText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, chunk) in out.iter_mut().enumerate() {
        *chunk = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

impl TraceId {
    pub fn generate() -> Self {
        TraceId(*uuid::Uuid::now_v7().as_bytes())
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// `trace_` and the hex digits, without an allocation.
    pub fn text(&self) -> IdText<38> {
        IdText::new("trace_", &self.0)
    }

    /// Parses `trace_<32 hex>`; the bare 32 hex digits (an OTLP / W3C trace id) are accepted too.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix("trace_").unwrap_or(s);
        let bytes = unhex::<16>(&digits.to_ascii_lowercase())?;
        (bytes != [0; 16]).then_some(TraceId(bytes))
    }
}

impl SpanId {
    pub fn generate() -> Self {
        loop {
            let bytes: [u8; 8] = rand::random();
            if bytes != [0; 8] {
                return SpanId(bytes);
            }
        }
    }

    pub fn hex(&self) -> String {
        hex(&self.0)
    }

    /// `span_` and the hex digits, without an allocation.
    pub fn text(&self) -> IdText<21> {
        IdText::new("span_", &self.0)
    }

    /// Parses `span_<16 hex>`; the bare 16 hex digits are accepted too.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix("span_").unwrap_or(s);
        let bytes = unhex::<8>(&digits.to_ascii_lowercase())?;
        (bytes != [0; 8]).then_some(SpanId(bytes))
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

macro_rules! string_serde {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.text())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$ty>::parse(&s)
                    .ok_or_else(|| serde::de::Error::custom(format!("invalid {}: {s}", $what)))
            }
        }
    };
}

string_serde!(TraceId, "trace id");
string_serde!(SpanId, "span id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_sdk_text_form() {
        let t = TraceId::generate().to_string();
        assert!(t.starts_with("trace_") && t.len() == 38, "{t}");
        assert_eq!(TraceId::parse(&t).unwrap().to_string(), t);
        let s = SpanId::generate().to_string();
        assert!(s.starts_with("span_") && s.len() == 21, "{s}");
        assert_eq!(SpanId::parse(&s).unwrap().to_string(), s);
    }

    #[test]
    fn ids_are_lower_case_hex_of_their_bytes() {
        let t = TraceId([
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ]);
        assert_eq!(t.to_string(), "trace_0123456789abcdeffedcba9876543210");
        assert_eq!(&*t.text(), "trace_0123456789abcdeffedcba9876543210");
        assert_eq!(
            &*SpanId([0, 0x0f, 0xf0, 0xff, 0x10, 0x01, 0x9a, 0xa9]).text(),
            "span_000ff0ff10019aa9"
        );
        assert_eq!(
            SpanId([0, 0x0f, 0xf0, 0xff, 0x10, 0x01, 0x9a, 0xa9]).hex(),
            "000ff0ff10019aa9"
        );
    }

    #[test]
    fn bad_ids_are_rejected() {
        assert!(TraceId::parse("trace_xyz").is_none());
        assert!(TraceId::parse(&format!("trace_{}", "0".repeat(32))).is_none());
        assert!(SpanId::parse("span_123").is_none());
    }

    #[test]
    fn trace_ids_are_time_ordered() {
        let a = TraceId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = TraceId::generate();
        assert!(a < b);
    }
}
