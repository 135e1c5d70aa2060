//! `list --search TEXT` on PostgreSQL: `tsvector` columns with GIN indexes.
//!
//! The words are cut and folded here, in Rust, the way SQLite's `unicode61 remove_diacritics`
//! tokenizer does (letters and digits make words; case and accents fold), and stored with
//! `array_to_tsvector`: no text search configuration, no `unaccent` extension (which a team's
//! database may not allow), and the same words found on both backends. What is indexed is what
//! SQLite indexes: trace names and workflows, span names with the text of their `input`,
//! `output` and `stdout` attributes, and event names. A trace matches when every word of the
//! search appears somewhere in it; a word ending in `*` matches as a prefix. Nothing the user
//! types reaches a `tsquery` but folded letters and digits.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

/// The longest word kept (PostgreSQL refuses lexemes of 2 KiB and more).
const MAX_WORD: usize = 256;
/// The most distinct words kept per row (a tsvector holds at most 1 MiB).
const MAX_WORDS: usize = 20_000;

/// The folded, distinct words of `texts`, for `array_to_tsvector`.
pub(super) fn words<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for text in texts {
        for word in tokens(text) {
            if out.len() >= MAX_WORDS {
                return out.into_iter().collect();
            }
            if word.len() <= MAX_WORD {
                out.insert(word);
            }
        }
    }
    out.into_iter().collect()
}

/// The words of a span: its name and the text leaves of its `input`, `output` and `stdout`.
pub(super) fn span_words(name: &str, attributes: &Map<String, Value>) -> Vec<String> {
    let mut texts = vec![name];
    for key in ["input", "output", "stdout"] {
        if let Some(value) = attributes.get(key) {
            leaves(value, &mut texts);
        }
    }
    words(texts)
}

fn leaves<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        _ => {}
    }
}

/// Lower-case, accent-free runs of letters and digits.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(fold)
        .filter(|w| !w.is_empty())
}

fn fold(word: &str) -> String {
    word.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One `tsquery` text per word of the search (all of a word's tokens, a prefix for a trailing
/// `*`); empty when the search has no word.
pub(super) fn queries(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter_map(|word| {
            let (stem, prefix) = match word.strip_suffix('*') {
                Some(stem) => (stem.trim_end_matches('*'), true),
                None => (word, false),
            };
            let parts: Vec<String> = tokens(stem).collect();
            let last = parts.len().checked_sub(1)?;
            Some(
                parts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        // Letters and digits only: quoting is belt and braces.
                        if prefix && i == last {
                            format!("'{t}':*")
                        } else {
                            format!("'{t}'")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" & "),
            )
        })
        .collect()
}

/// The condition (ANDed onto a `traces` query) that keeps the traces matching every query;
/// `$n` placeholders from `first`.
pub(super) fn clause(count: usize, first: usize) -> String {
    (0..count)
        .map(|i| {
            let n = first + i;
            format!(
                " AND traces.trace_id IN (
                    SELECT trace_id FROM spans WHERE search @@ (${n}::text)::tsquery
                    UNION SELECT trace_id FROM events WHERE search @@ (${n}::text)::tsquery
                    UNION SELECT trace_id FROM traces WHERE search @@ (${n}::text)::tsquery)"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_fold_like_unicode61() {
        assert_eq!(
            words(["The parcel left Zürich, gpt-4o_mini!"]),
            ["4o", "gpt", "left", "mini", "parcel", "the", "zurich"]
        );
        let attrs = json!({"input": [{"role": "user", "content": "Où est-il?"}],
                           "argv": ["secret"], "stdout": "42 units"});
        let Value::Object(attrs) = attrs else {
            unreachable!()
        };
        assert_eq!(
            span_words("Check", &attrs),
            ["42", "check", "est", "il", "ou", "units", "user"]
        );
    }

    #[test]
    fn queries_are_letters_and_digits_only() {
        assert_eq!(queries("parc*"), ["'parc':*"]);
        assert_eq!(queries("Zürich gpt-4o"), ["'zurich'", "'gpt' & '4o'"]);
        assert_eq!(queries("\"AND ' | !x"), ["'and'", "'x'"]);
        assert!(queries("** ' -").is_empty());
    }
}
