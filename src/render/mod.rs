//! Turning stored traces into what people and scripts read: the tree (`show`, `run`), the table
//! (`list`) and the stable JSON shapes of docs/contract.md#json-shapes.
//!
//! Whether colour is used is decided once, in [`theme`]; everything here takes a [`Theme`] and a
//! width and returns a `String`, so the renderers are pure functions that tests can assert
//! literally.

mod content;
pub mod counts;
pub mod diff;
pub mod eval;
pub mod eval_compare;
pub mod json;
mod line;
pub mod progress;
mod screen;
pub mod stats;
pub mod table;
pub mod theme;
pub mod tree;
mod waterfall;

pub use theme::{ColorChoice, Theme};

/// A duration for people: `0.4ms`, `812.4ms`, `2.35s`, `3m07s`, `1h02m`.
pub fn human_duration(ms: f64) -> String {
    let ms = if ms.is_finite() { ms.max(0.0) } else { 0.0 };
    if ms < 0.05 && ms > 0.0 {
        String::from("<0.1ms")
    } else if ms < 999.95 {
        format!("{ms:.1}ms")
    } else if ms < 59_995.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        let secs = (ms / 1000.0).round() as u64;
        if secs < 3600 {
            format!("{}m{:02}s", secs / 60, secs % 60)
        } else {
            format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}

/// `$0.0123`, with enough digits for small sums; `-` when unknown.
pub fn cost(c: Option<f64>) -> String {
    match c {
        None => String::from("-"),
        Some(c) if c.abs() >= 0.01 || c == 0.0 => format!("${c:.4}"),
        Some(c) => format!("${c:.6}"),
    }
}

/// The number of characters of `s` (what the renderers count as width).
pub(crate) fn width_of(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0.0), "0.0ms");
        assert_eq!(human_duration(0.01), "<0.1ms");
        assert_eq!(human_duration(0.4), "0.4ms");
        assert_eq!(human_duration(812.44), "812.4ms");
        assert_eq!(human_duration(999.96), "1.00s");
        assert_eq!(human_duration(2345.0), "2.35s");
        assert_eq!(human_duration(187_000.0), "3m07s");
        assert_eq!(human_duration(3_720_000.0), "1h02m");
        assert_eq!(human_duration(-5.0), "0.0ms");
    }
}
