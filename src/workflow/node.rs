//! A YAML document as a tree of located nodes.
//!
//! serde-saphyr parses the text; every node and every mapping key keeps the line and column it
//! was written at. Converting this tree into the typed schema by hand (in `parse/`) is what
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

#[cfg(test)]
mod tests {
    use super::*;

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
