//! URL query strings (`k=v&k2=v2`), read the same way wherever one arrives: a model server's
//! base URL, a request to `serve`.

/// A query-string value with `+` and percent escapes decoded.
pub fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `k=v&k2=v2`, decoded; keys may repeat, a key without `=` has an empty value.
pub fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_decoded_and_may_repeat() {
        assert_eq!(
            pairs(Some("a=1&b=x+y%2Fz&a=2&flag&")),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y/z".into()),
                ("a".into(), "2".into()),
                ("flag".into(), String::new()),
            ]
        );
        assert!(pairs(None).is_empty());
    }
}
