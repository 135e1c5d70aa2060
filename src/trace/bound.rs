//! Cutting text and JSON down to a size, visibly.
//!
//! [`truncate`] shortens a text for a person to read (a table cell, a value quoted in an error
//! message): it counts characters and ends with `…`. It lives here, at the bottom of the layers,
//! because the renderers, the engine's messages and the checks all need the same cut.
//!
//! What other programs send to `serve`, and what `list` hands back, must not grow without bound:
//! one 31 MB trace name made every list request carry it. A cut value keeps its beginning and
//! says so at its end ([`MARKER`] and the original size), so a reader never mistakes it for the
//! whole; an object or array with too many entries keeps its first ones and one entry saying how
//! many were dropped.

use serde_json::{Map, Value};

/// What ends a cut string: `…[truncated: 31457280 bytes in all]`.
pub const MARKER: &str = "…[truncated: ";

/// `s` cut to at most `max` characters, the last of them `…` when anything was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Cuts `s` to at most `max` bytes (at a character boundary) followed by the marker; returns
/// whether anything was cut.
pub fn truncate_str(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let total = s.len();
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(&format!("{MARKER}{total} bytes in all]"));
    // Truncating keeps the allocation: give the rest back, or a cut 31 MB name still costs
    // 31 MB for as long as it is held.
    s.shrink_to_fit();
    true
}

/// Cuts every string in `v` (object keys included) to `max_str` bytes and every object or array
/// to `max_items` entries, at any depth; returns whether anything was cut.
pub fn bound_value(v: &mut Value, max_str: usize, max_items: usize) -> bool {
    match v {
        Value::String(s) => truncate_str(s, max_str),
        Value::Array(items) => {
            let dropped = items.len().saturating_sub(max_items);
            items.truncate(max_items);
            let mut cut = dropped > 0;
            for item in items.iter_mut() {
                cut |= bound_value(item, max_str, max_items);
            }
            if dropped > 0 {
                items.push(Value::String(format!("{MARKER}{dropped} more items]")));
            }
            cut
        }
        Value::Object(map) => bound_map(map, max_str, max_items),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// [`bound_value`] for an object held as a map.
pub fn bound_map(map: &mut Map<String, Value>, max_str: usize, max_items: usize) -> bool {
    let total = map.len();
    let mut cut = false;
    if total > max_items || map.keys().any(|k| k.len() > max_str) {
        let old = std::mem::take(map);
        for (mut key, value) in old.into_iter().take(max_items) {
            truncate_str(&mut key, max_str);
            map.insert(key, value);
        }
        cut = true;
    }
    for value in map.values_mut() {
        cut |= bound_value(value, max_str, max_items);
    }
    if total > max_items {
        map.insert(
            "…".to_string(),
            Value::String(format!("{MARKER}{} more keys]", total - max_items)),
        );
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("abc", 1), "…");
    }

    #[test]
    fn a_long_string_keeps_its_start_and_says_how_long_it_was() {
        let mut s = "a".repeat(5000);
        assert!(truncate_str(&mut s, 1024));
        assert!(s.starts_with(&"a".repeat(1024)));
        assert!(s.ends_with("…[truncated: 5000 bytes in all]"), "{s}");
        let mut short = "short".to_string();
        assert!(!truncate_str(&mut short, 1024));
        assert_eq!(short, "short");
        // Never inside a character.
        let mut wide = "é".repeat(10);
        assert!(truncate_str(&mut wide, 5));
        assert!(wide.starts_with("éé…"), "{wide}");
    }

    #[test]
    fn json_is_cut_at_every_depth() {
        let mut v = json!({
            "k".repeat(40): "v",
            "list": (0..10).collect::<Vec<_>>(),
            "deep": {"text": "x".repeat(100)},
            "n": 1,
        });
        assert!(bound_value(&mut v, 16, 3));
        let map = v.as_object().unwrap();
        assert_eq!(map.len(), 4, "three entries and the note: {v}");
        assert_eq!(map["…"], "…[truncated: 1 more keys]");
        let first = map.keys().next().unwrap();
        assert!(
            first.starts_with("kkkk") && first.contains("40 bytes"),
            "{first}"
        );
        assert_eq!(map["list"].as_array().unwrap().len(), 4);
        assert!(map["deep"]["text"].as_str().unwrap().contains("100 bytes"));
        let mut small = json!({"a": [1, "b"]});
        assert!(!bound_value(&mut small, 16, 3));
        assert_eq!(small, json!({"a": [1, "b"]}));
    }
}
