//! A YAML document as a tree of located nodes.
//!
//! serde-saphyr parses the text (a plain workflow file is built straight from the events of its
//! parser, granit-parser: see [`plain`]); every node and every mapping key keeps the line and
//! column it was written at. Converting this tree into the typed schema by hand (in `parse/`) is what
//! lets us report *every* problem in a file, each at its own place, instead of stopping at the
//! first one as a derived `Deserialize` would.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use super::diagnostic::Loc;
use super::schema::Located;

/// One YAML value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: Loc,
    /// The byte range of a scalar in the source, when known (to recover its exact text).
    pub bytes: Option<(usize, usize)>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; duplicate keys are rejected by the YAML parser.
    Map(Vec<(Located<String>, Node)>),
}

/// A YAML problem that prevents building the tree at all.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

/// Parses one YAML document into a located tree.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    match plain::tree(source) {
        Some(root) => Ok(root),
        None => parse_spanned(source),
    }
}

/// [`parse`] through serde-saphyr alone: every document, every rule, every message.
fn parse_spanned(source: &str) -> Result<Node, SyntaxError> {
    match serde_saphyr::from_str::<Spanned<Node>>(source) {
        Ok(spanned) => Ok(spanned_node(spanned)),
        Err(err) => {
            let loc = err
                .location()
                .map(to_loc)
                .filter(|l| l.line > 0)
                .unwrap_or(Loc { line: 1, col: 1 });
            Err(SyntaxError {
                loc,
                message: syntax_message(&err.without_snippet().to_string()),
            })
        }
    }
}

/// serde-saphyr's message, without its own location suffix and phrased for our users.
fn syntax_message(raw: &str) -> String {
    let mut msg = raw.trim();
    if let Some(i) = msg.rfind(" at line ") {
        msg = &msg[..i];
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key `{key}`");
    }
    if msg.starts_with("multiple YAML documents detected") {
        return "a workflow file holds one YAML document (found a second `---`)".to_string();
    }
    format!("invalid YAML: {msg}")
}

fn to_loc(l: Location) -> Loc {
    Loc {
        line: u32::try_from(l.line()).unwrap_or(u32::MAX),
        col: u32::try_from(l.column()).unwrap_or(u32::MAX),
    }
}

fn spanned_node(spanned: Spanned<Node>) -> Node {
    let mut node = spanned.value;
    node.loc = to_loc(spanned.referenced);
    if matches!(
        node.kind,
        NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::UInt(_) | NodeKind::Float(_)
    ) {
        let span = spanned.referenced.span();
        if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
            node.bytes = usize::try_from(off).ok().zip(usize::try_from(len).ok());
        }
    }
    node
}

impl Node {
    fn new(kind: NodeKind) -> Node {
        Node {
            kind,
            loc: Loc::default(),
            bytes: None,
        }
    }

    /// What the node is, for messages ("found a list").
    pub fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "nothing",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::UInt(_) | NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// A scalar as text: strings as they are; numbers and booleans as written in the file.
    pub fn scalar_text(&self, source: &str) -> Option<String> {
        let written = || {
            self.bytes
                .and_then(|(off, len)| source.get(off..off.checked_add(len)?))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Bool(b) => Some(written().unwrap_or_else(|| b.to_string())),
            NodeKind::Int(i) => Some(written().unwrap_or_else(|| i.to_string())),
            NodeKind::UInt(u) => Some(written().unwrap_or_else(|| u.to_string())),
            NodeKind::Float(f) => Some(written().unwrap_or_else(|| f.to_string())),
            NodeKind::Null | NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }

    /// The node as JSON: ints stay ints, floats floats, maps keep their order.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::UInt(u) => Value::from(*u),
            NodeKind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Null))
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Int(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::new(match i64::try_from(v) {
            Ok(i) => NodeKind::Int(i),
            Err(_) => NodeKind::UInt(v),
        }))
    }

    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::new(match i64::try_from(v) {
            Ok(i) => NodeKind::Int(i),
            Err(_) => NodeKind::Float(v as f64),
        }))
    }

    fn visit_u128<E>(self, v: u128) -> Result<Node, E> {
        Ok(Node::new(match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => NodeKind::Int(i),
            (_, Ok(u)) => NodeKind::UInt(u),
            _ => NodeKind::Float(v as f64),
        }))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Str(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Str(v)))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::new(NodeKind::Str(
            String::from_utf8_lossy(v).into_owned(),
        )))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(spanned_node(item));
        }
        Ok(Node::new(NodeKind::Seq(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((
                Located::new(key.value, to_loc(key.referenced)),
                spanned_node(value),
            ));
        }
        Ok(Node::new(NodeKind::Map(entries)))
    }
}

/// The tree of a plain document built straight from the parser's events, which serde-saphyr
/// reads too: a quarter of the instructions of its spanned deserializer per node (a
/// 2000-line `parallel:` was parsed in 68 M instructions, 34k a line).
///
/// Only for documents where that is the same tree by construction: one document whose root is a
/// mapping; no anchors, aliases, tags or merge keys; keys that are strings; within
/// serde-saphyr's depth and node budgets. A plain scalar that could be read as anything but
/// text (it starts with a digit, a sign or a dot, or is one of the words YAML reads as a
/// boolean, a null or a special float) is resolved by serde-saphyr itself, on its own. Anything
/// else, a syntax error included, returns `None`, and the document goes through
/// [`parse_spanned`], which then also gives the message. A property test holds the two equal on
/// every document the fast path takes (`fuzz.rs`).
mod plain {
    use std::borrow::Cow;

    use granit_parser::{Event, Parser, ScalarStyle, Span};

    use super::{Loc, Located, Node, NodeKind};

    /// serde-saphyr's default `Budget`: deeper or larger documents are refused there.
    const MAX_DEPTH: usize = 64;
    const MAX_NODES: usize = 250_000;
    /// The most keys of one mapping checked for duplicates here.
    const MAX_SCANNED_KEYS: usize = 256;

    /// A collection whose end has not come yet; a mapping holds the key waiting for its value.
    enum Open {
        Seq(Loc, Vec<Node>),
        Map(Loc, Vec<(Located<String>, Node)>, Option<Located<String>>),
    }

    pub(super) fn tree(source: &str) -> Option<Node> {
        let mut parser = Parser::new_from_str(source);
        let mut open: Vec<Open> = Vec::new();
        let mut root: Option<Node> = None;
        let mut documents = 0;
        let mut nodes = 0;
        while let Some(next) = parser.next_event() {
            let (event, span) = next.ok()?;
            let node = match event {
                Event::StreamStart | Event::DocumentEnd => continue,
                Event::StreamEnd => break,
                // A `%YAML` directive may change how serde-saphyr reads scalars.
                Event::DocumentStart(_, Some(_)) => return None,
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return None;
                    }
                    continue;
                }
                Event::Scalar(value, style, 0, None) => scalar(value, style, &span)?,
                Event::SequenceStart(_, 0, None) | Event::MappingStart(_, 0, None) => {
                    nodes += 1;
                    if open.len() >= MAX_DEPTH || nodes > MAX_NODES {
                        return None;
                    }
                    open.push(if matches!(event, Event::MappingStart(..)) {
                        Open::Map(loc(&span), Vec::new(), None)
                    } else {
                        Open::Seq(loc(&span), Vec::new())
                    });
                    continue;
                }
                Event::SequenceEnd => match open.pop()? {
                    Open::Seq(loc, items) => plain_node(loc, NodeKind::Seq(items)),
                    Open::Map(..) => return None,
                },
                Event::MappingEnd => match open.pop()? {
                    Open::Map(loc, entries, None) => plain_node(loc, NodeKind::Map(entries)),
                    _ => return None,
                },
                // Anchors, aliases, tags and comments: serde-saphyr's to read.
                _ => return None,
            };
            nodes += 1;
            if nodes > MAX_NODES {
                return None;
            }
            match open.last_mut() {
                None if root.is_none() => root = Some(node),
                None => return None,
                Some(Open::Seq(_, items)) => items.push(node),
                Some(Open::Map(_, entries, key)) => {
                    match key.take() {
                        Some(k) => entries.push((k, node)),
                        None => {
                            let NodeKind::Str(text) = node.kind else {
                                return None;
                            };
                            // A duplicate is an error with serde-saphyr's message. Looked for
                            // by a scan, so a mapping of many keys goes to serde-saphyr, which
                            // hashes them.
                            if entries.len() >= MAX_SCANNED_KEYS
                                || entries.iter().any(|(k, _)| k.value == text)
                            {
                                return None;
                            }
                            *key = Some(Located::new(text, node.loc));
                        }
                    }
                }
            }
        }
        match root {
            Some(root) if open.is_empty() && matches!(root.kind, NodeKind::Map(_)) => Some(root),
            _ => None,
        }
    }

    /// A node without the span of its text (kept for numbers and booleans only).
    fn plain_node(loc: Loc, kind: NodeKind) -> Node {
        Node {
            kind,
            loc,
            bytes: None,
        }
    }

    fn loc(span: &Span) -> Loc {
        Loc {
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            col: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
        }
    }

    fn scalar(value: Cow<'_, str>, style: ScalarStyle, span: &Span) -> Option<Node> {
        let loc = loc(span);
        if style == ScalarStyle::Plain && value == "<<" {
            return None; // a merge key
        }
        if style != ScalarStyle::Plain || !maybe_not_text(&value) {
            return Some(plain_node(loc, NodeKind::Str(value.into_owned())));
        }
        if matches!(&*value, "" | "~" | "null" | "Null" | "NULL") {
            return Some(plain_node(loc, NodeKind::Null));
        }
        // Read on its own by serde-saphyr: only text that is one plain scalar wherever it
        // stands (no space, colon, comment, quote or flow indicator, not a lone sign).
        let alone = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_'))
            && !matches!(&*value, "-" | "+" | "." | "-." | "+.");
        if !alone {
            return None;
        }
        let resolved = serde_saphyr::from_str::<Node>(&value).ok()?;
        let bytes = match &resolved.kind {
            NodeKind::Str(text) if *text == *value => None,
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::UInt(_) | NodeKind::Float(_) => span
                .start
                .byte_offset()
                .zip(span.end.byte_offset())
                .map(|(start, end)| (start, end.saturating_sub(start))),
            _ => return None,
        };
        Some(Node {
            kind: resolved.kind,
            loc,
            bytes,
        })
    }

    /// Whether a plain scalar might be read as something other than text: a null, a boolean
    /// (YAML 1.1's words too), a number or a special float.
    fn maybe_not_text(value: &str) -> bool {
        let Some(&first) = value.as_bytes().first() else {
            return true;
        };
        if !first.is_ascii_alphabetic() {
            return first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'.' | b'~' | b'_');
        }
        const WORDS: [&str; 9] = ["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
        WORDS.iter().any(|w| value.eq_ignore_ascii_case(w))
            || value
                .get(..3)
                .is_some_and(|p| p.eq_ignore_ascii_case("inf") || p.eq_ignore_ascii_case("nan"))
    }
}

/// Whether [`plain::tree`] takes `source`; when it does, asserts that its tree is the one
/// serde-saphyr builds, locations and written number spans included.
#[cfg(test)]
pub(crate) fn plain_tree_is_serde_saphyrs(source: &str) -> bool {
    let Some(fast) = plain::tree(source) else {
        return false;
    };
    assert_eq!(Ok(fast), parse_spanned(source), "for {source:?}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKFLOWS: &[&str] = &[
        include_str!("../../workflows/research.yaml"),
        include_str!("../../workflows/order.yaml"),
        include_str!("../../workflows/support.yaml"),
        include_str!("../../workflows/document.yaml"),
        include_str!("../../workflows/batch.yaml"),
    ];

    #[test]
    fn plain_workflows_are_built_from_the_events_into_serde_saphyrs_tree() {
        for wf in WORKFLOWS {
            assert!(plain_tree_is_serde_saphyrs(wf), "not taken: {wf}");
        }
        let mut wide = String::from(
            "name: w\nmodel: gpt-4o-mini\nagents: { a: { instructions: Answer briefly. } }\nsteps:\n  - name: fan-out\n    parallel:\n",
        );
        for i in 0..300 {
            wide.push_str(&format!(
                "      - {{ agent: a, input: \"question {i}\" }}\n"
            ));
        }
        assert!(plain_tree_is_serde_saphyrs(&wide));
    }

    #[test]
    fn scalars_that_may_not_be_text_are_read_as_serde_saphyr_reads_them() {
        let scalars = [
            "a",
            "hello world",
            "1",
            "-3",
            "+3",
            "0",
            "007",
            "0.50",
            "1e3",
            "1E-2",
            "-.5",
            ".5",
            "5.",
            "true",
            "True",
            "TRUE",
            "yes",
            "No",
            "ON",
            "off",
            "y",
            "N",
            "~",
            "null",
            "Null",
            "NULL",
            "0x1F",
            "0X1F",
            "0o17",
            "0b101",
            "1_000",
            "_1",
            ".inf",
            "-.Inf",
            "+.INF",
            ".nan",
            "-.nan",
            "inf",
            "Infinity",
            "nan",
            "NaN",
            "1e999",
            "-1e999",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "2m",
            "10ms",
            "1.2.3",
            "v1.2",
            "-x",
            "x-",
            "$HOME",
            "/bin/sh",
            "a: b",
            "'q'",
            "\"dq\"",
            "é",
            "1 2",
            "3 apples",
            "<<",
            "-",
            "[a, 1, true]",
            "{ a: 1 }",
            "",
        ];
        let mut taken = 0;
        for s in scalars {
            for doc in [
                format!("k: {s}\n"),
                format!("k: [{s}, x]\n"),
                format!("k: {{ a: {s} }}\n"),
                format!("k:\n  - {s}\n  - {s}\n"),
                format!("{s}: v\n"),
            ] {
                if serde_saphyr::from_str::<serde_saphyr::Spanned<Node>>(&doc).is_ok()
                    && plain_tree_is_serde_saphyrs(&doc)
                {
                    taken += 1;
                }
            }
        }
        // Most of them are read by the fast path (the rest fall back, equally right).
        assert!(taken > scalars.len() * 3, "{taken}");
        let root = parse("k: [1, 0.5, yes, ~, x, 18446744073709551615]\n").unwrap();
        let items = seq(&map(&root)[0].1);
        let kinds: Vec<&NodeKind> = items.iter().map(|n| &n.kind).collect();
        assert_eq!(
            kinds,
            [
                &NodeKind::Int(1),
                &NodeKind::Float(0.5),
                &NodeKind::Bool(true),
                &NodeKind::Null,
                &NodeKind::Str("x".into()),
                &NodeKind::UInt(u64::MAX),
            ]
        );
    }

    #[test]
    fn what_only_serde_saphyr_reads_goes_to_serde_saphyr() {
        for doc in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "base: &b { x: 1 }\nk:\n  <<: *b\n",
            "a: 1\na: 2\n",
            "a: 1\n---\nb: 2\n",
            "- a\n- b\n",
            "just text\n",
            "",
            "a: {b: 1\nc: 2\n",
            "1: a\n",
            "a:\n  - b: [[[[1]]]]\n",
            "%YAML 1.2\n---\na: yes\n",
        ] {
            if plain::tree(doc).is_some() {
                // Taken only where it is the same tree.
                assert!(plain_tree_is_serde_saphyrs(doc), "{doc}");
                assert!(doc.starts_with("a:\n"), "should fall back: {doc:?}");
            }
        }
        // A mapping of many keys: serde-saphyr's (hashed) duplicate check.
        let many: String = (0..300).map(|i| format!("k{i}: {i}\n")).collect();
        assert!(plain::tree(&many).is_none());
        assert!(plain_tree_is_serde_saphyrs(
            &many[..many.find("k200:").unwrap()]
        ));
        // Deeper than serde-saphyr's budget allows: its error, not a tree.
        let deep = format!("a: {}1{}\n", "[".repeat(64), "]".repeat(64));
        assert!(plain::tree(&deep).is_none());
        // At the edge of the budget both agree (on a thread with room for serde-saphyr's
        // recursion in a debug build).
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(|| {
                for depth in 56..68 {
                    let doc = format!("a: {}1{}\n", "[".repeat(depth), "]".repeat(depth));
                    if !plain_tree_is_serde_saphyrs(&doc) {
                        assert!(depth >= 63, "{depth}");
                    }
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    fn at(line: u32, col: u32) -> Loc {
        Loc { line, col }
    }

    fn map(node: &Node) -> &[(Located<String>, Node)] {
        match &node.kind {
            NodeKind::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn seq(node: &Node) -> &[Node] {
        match &node.kind {
            NodeKind::Seq(items) => items,
            other => panic!("not a list: {other:?}"),
        }
    }

    #[test]
    fn nodes_and_keys_carry_their_line_and_column() {
        let src = "name: x\nsteps:\n  - id: a\n    run: [echo, 1]\n  - { id: b, span: S }\n";
        let root = parse(src).unwrap();
        assert_eq!(root.loc, at(1, 1));
        let top = map(&root);
        assert_eq!(top[0].0.loc, at(1, 1));
        assert_eq!(top[0].1.loc, at(1, 7));
        assert_eq!(top[1].0.loc, at(2, 1));
        let steps = seq(&top[1].1);
        assert_eq!(steps[0].loc, at(3, 5));
        let first = map(&steps[0]);
        assert_eq!(first[1].0.loc, at(4, 5));
        let argv = seq(&first[1].1);
        assert_eq!(argv[0].loc, at(4, 11));
        assert_eq!(argv[1].loc, at(4, 17));
        assert_eq!(argv[1].kind, NodeKind::Int(1));
        // Flow style: the mapping starts at `{`, keys and values at their own columns.
        assert_eq!(steps[1].loc, at(5, 5));
        let second = map(&steps[1]);
        assert_eq!(second[0].0.loc, at(5, 7));
        assert_eq!(second[1].0.loc, at(5, 14));
        assert_eq!(second[1].1.loc, at(5, 20));
    }

    #[test]
    fn numbers_keep_the_text_they_were_written_as() {
        let src = "a: [0.50, 7, true, \"q\"]\n";
        let root = parse(src).unwrap();
        let items = seq(&map(&root)[0].1);
        let texts: Vec<_> = items.iter().map(|n| n.scalar_text(src)).collect();
        assert_eq!(
            texts,
            [Some("0.50"), Some("7"), Some("true"), Some("q")].map(|s| s.map(String::from))
        );
        assert_eq!(items[0].to_json(), serde_json::json!(0.5));
        assert_eq!(items[1].to_json(), serde_json::json!(7));
    }

    #[test]
    fn syntax_errors_have_a_location_and_a_plain_message() {
        let err = parse("a: {b: 1\nc: 2\n").unwrap_err();
        assert_eq!(err.loc, at(2, 2));
        assert_eq!(
            err.message,
            "invalid YAML: while parsing a flow mapping, did not find expected ',' or '}'"
        );
        let err = parse("name: x\nname: y\n").unwrap_err();
        assert_eq!(
            (err.loc, err.message.as_str()),
            (at(2, 1), "duplicate key `name`")
        );
    }
}
