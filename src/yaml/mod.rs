//! YAML with positions: a document tree whose every node knows its line and column and keeps its
//! tag (CloudFormation's `!Ref`, `!Sub` …), and a serde deserializer over that tree whose errors
//! point at the node they concern.
//!
//! Config files are read as `Node` trees and deserialized into typed structs with
//! [`from_node`]; CloudFormation templates are read as `Node` trees and converted by the
//! `template` module. JSON is YAML here, so JSON templates take the same path.

mod de;
mod spanned;

pub use de::{Error as DeError, from_node, from_node_recovering};
pub use spanned::Spanned;

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};

use crate::diag::{Pos, Span};

/// How much a document may grow through aliases: its expanded size (see [`Budget`]) may be at
/// most this many times its own length …
pub const EXPANSION_FACTOR: usize = 10;
/// … but a small document may always expand to this many bytes …
pub const MIN_EXPANDED_BYTES: usize = 256 * 1024;
/// … and no document beyond this many bytes, whatever its length.
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;
/// The most nodes a document may hold, aliases expanded. A few kilobytes of nested aliases can
/// otherwise stand for billions of nodes.
pub const MAX_NODES: usize = 1_000_000;

/// How deep collections may nest; deeper input is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 256;

/// What a document may expand to. The expanded size is the size of the document written out
/// with every alias replaced by what it names: the text of every scalar plus one byte per node.
/// Without aliases it is at most the document's length, so only expansion through aliases can
/// reach the limit; it is checked before an alias is copied, so refusing costs no more than the
/// budget itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_bytes: usize,
    pub max_nodes: usize,
}

impl Budget {
    /// The budget of a document `len` bytes long: `EXPANSION_FACTOR` times its length, at least
    /// `MIN_EXPANDED_BYTES`, at most `MAX_EXPANDED_BYTES`; and at most `MAX_NODES` nodes.
    pub fn for_document(len: usize) -> Budget {
        Budget {
            max_bytes: len
                .saturating_mul(EXPANSION_FACTOR)
                .clamp(MIN_EXPANDED_BYTES, MAX_EXPANDED_BYTES),
            max_nodes: MAX_NODES,
        }
    }
}

/// One node of a YAML document.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
    /// The node's tag as written (`!Ref`, `!!str`), if any.
    pub tag: Option<String>,
}

/// What a node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Key–value pairs in document order; keys are unique (checked when parsing).
    Map(Vec<(Node, Node)>),
}

/// A scalar's text and how it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub style: Style,
}

/// How a scalar was written. Only plain scalars can be null, booleans or numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

impl Node {
    /// A plain scalar with YAML's null spelling (`~`, `null`, or nothing at all).
    pub fn is_null(&self) -> bool {
        match &self.kind {
            Kind::Scalar(s) => s.style == Style::Plain && is_null_text(&s.text),
            _ => false,
        }
    }

    /// The scalar text, when this node is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// The value of `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The pairs of a mapping node (empty for other nodes).
    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.kind {
            Kind::Map(pairs) => pairs,
            _ => &[],
        }
    }

    /// A short description of the node's kind, for messages: "a mapping", "a list", "a string".
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar(_) if self.is_null() => "nothing (null)",
            Kind::Scalar(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

pub(crate) fn is_null_text(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

/// A YAML syntax error with the position the parser stopped at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
    pub pos: Pos,
    /// What to do about it.
    pub help: &'static str,
}

const HELP_SYNTAX: &str = "fix the YAML syntax; indentation uses spaces, not tabs";
const HELP_ALIASES: &str = "write the values out, or use fewer aliases";

fn pos_of(m: &saphyr_parser::Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

fn span_of(s: &saphyr_parser::Span) -> Span {
    Span {
        start: pos_of(&s.start),
        end: pos_of(&s.end),
    }
}

fn tag_text(tag: &Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

fn syntax(e: &ScanError) -> SyntaxError {
    SyntaxError {
        message: e.info().to_string(),
        pos: pos_of(e.marker()),
        help: HELP_SYNTAX,
    }
}

/// Parses one YAML document. An empty file gives a null scalar at 1:1. A stream of several
/// documents is refused: every formwork file holds one. Aliases are expanded within
/// [`Budget::for_document`].
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    parse_within(text, Budget::for_document(text.len()))
}

/// Parses one YAML document whose aliases may expand it to at most `budget`.
pub fn parse_within(text: &str, budget: Budget) -> Result<Node, SyntaxError> {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        budget,
        size: Size::default(),
        root: None,
        documents: 0,
    };
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| syntax(&e))?;
        b.event(ev, span_of(&span))?;
    }
    Ok(b.root.unwrap_or(Node {
        kind: Kind::Scalar(Scalar {
            text: String::new(),
            style: Style::Plain,
        }),
        span: Span {
            start: Pos { line: 1, col: 1 },
            end: Pos { line: 1, col: 1 },
        },
        tag: None,
    }))
}

/// The expanded size of a node or of everything read so far: nodes, and bytes as [`Budget`]
/// counts them.
#[derive(Clone, Copy, Debug, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl Size {
    fn since(self, earlier: Size) -> Size {
        Size {
            nodes: self.nodes - earlier.nodes,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// A collection being read: the node, its anchor, the size read before it opened, and for a
/// mapping the key waiting for its value and the keys seen with their lines (so that a
/// duplicate is found in constant time, whatever the mapping's size).
enum Open {
    Seq(Node, usize, Size),
    Map {
        node: Node,
        anchor: usize,
        before: Size,
        pending: Option<Node>,
        keys: HashMap<String, u32>,
    },
}

struct Builder {
    stack: Vec<Open>,
    /// Anchored nodes with their expanded size.
    anchors: HashMap<usize, (Node, Size)>,
    budget: Budget,
    size: Size,
    root: Option<Node>,
    documents: usize,
}

impl Builder {
    fn event(&mut self, ev: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        match ev {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(SyntaxError {
                        message: "a second YAML document (`---`) in one file; each formwork file holds exactly one document".into(),
                        pos: span.start,
                        help: "remove the `---` and what follows it, or move it to a file of its own",
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let size = Size {
                    nodes: 1,
                    bytes: text.len() + 1,
                };
                self.grow(size, span)?;
                let node = Node {
                    kind: Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        style: match style {
                            ScalarStyle::Plain => Style::Plain,
                            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                            ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                        },
                    }),
                    span,
                    tag: tag.map(|t| tag_text(&t)),
                };
                self.finish(node, anchor, size)?;
            }
            Event::Alias(id) => {
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    return Err(SyntaxError {
                        message: "alias to an unknown anchor".into(),
                        pos: span.start,
                        help: "define the anchor (`&name`) before the alias (`*name`)",
                    });
                };
                // Checked before the copy: refusing costs nothing.
                self.grow(size, span)?;
                let node = self.anchors[&id].0.clone();
                self.finish(node, 0, size)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.open_check(span)?;
                let node = Node {
                    kind: Kind::Seq(Vec::new()),
                    span,
                    tag: tag.map(|t| tag_text(&t)),
                };
                self.stack.push(Open::Seq(node, anchor, self.size));
            }
            Event::MappingStart(anchor, tag) => {
                self.open_check(span)?;
                let node = Node {
                    kind: Kind::Map(Vec::new()),
                    span,
                    tag: tag.map(|t| tag_text(&t)),
                };
                self.stack.push(Open::Map {
                    node,
                    anchor,
                    before: self.size,
                    pending: None,
                    keys: HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor, before) = match self.stack.pop() {
                    Some(Open::Seq(n, a, b))
                    | Some(Open::Map {
                        node: n,
                        anchor: a,
                        before: b,
                        pending: None,
                        ..
                    }) => (n, a, b),
                    Some(Open::Map { .. }) | None => {
                        return Err(SyntaxError {
                            message: "unbalanced YAML structure".into(),
                            pos: span.start,
                            help: HELP_SYNTAX,
                        });
                    }
                };
                let last_end = match &node.kind {
                    Kind::Seq(items) => items.last().map(|n| n.span.end),
                    Kind::Map(pairs) => pairs.last().map(|(_, v)| v.span.end),
                    Kind::Scalar(_) => None,
                };
                node.span.end = last_end.unwrap_or(span.end).max(node.span.start);
                self.grow(Size { nodes: 1, bytes: 1 }, span)?;
                let size = self.size.since(before);
                self.finish(node, anchor, size)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// Counts `more` against the budget; refused at `span` when it would be exceeded.
    fn grow(&mut self, more: Size, span: Span) -> Result<(), SyntaxError> {
        let nodes = self.size.nodes.saturating_add(more.nodes);
        let bytes = self.size.bytes.saturating_add(more.bytes);
        if bytes > self.budget.max_bytes {
            return Err(SyntaxError {
                message: format!(
                    "the document expands to more than {} through aliases (at most {EXPANSION_FACTOR} times its own size, and never more than {})",
                    human_bytes(self.budget.max_bytes),
                    human_bytes(MAX_EXPANDED_BYTES),
                ),
                pos: span.start,
                help: HELP_ALIASES,
            });
        }
        if nodes > self.budget.max_nodes {
            return Err(SyntaxError {
                message: format!(
                    "the document expands to more than {} nodes through aliases",
                    self.budget.max_nodes
                ),
                pos: span.start,
                help: HELP_ALIASES,
            });
        }
        self.size = Size { nodes, bytes };
        Ok(())
    }

    fn open_check(&self, span: Span) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                pos: span.start,
                help: "flatten the structure",
            });
        }
        Ok(())
    }

    /// Puts a complete node where it belongs; `size` is its expanded size.
    fn finish(&mut self, node: Node, anchor: usize, size: Size) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(seq, _, _)) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Open::Map {
                node: map,
                pending,
                keys,
                ..
            }) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Some(text) = key.as_str() {
                        if let Some(first) = keys.get(text) {
                            return Err(SyntaxError {
                                message: format!(
                                    "duplicate key `{text}` (first defined on line {first}); each key may appear once in a mapping"
                                ),
                                pos: key.span.start,
                                help: "remove one of the two, or rename it",
                            });
                        }
                        keys.insert(text.to_string(), key.span.start.line);
                    }
                    if let Kind::Map(pairs) = &mut map.kind {
                        pairs.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

/// `n` bytes for people: `64 MiB`, `256 KiB`, `900 bytes`.
fn human_bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= 1024 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_tags_and_positions() {
        let doc = parse("Resources:\n  A:\n    Value: !Ref B\n    List: !GetAtt [C, D]\n").unwrap();
        let a = doc.get("Resources").unwrap().get("A").unwrap();
        let v = a.get("Value").unwrap();
        assert_eq!(v.tag.as_deref(), Some("!Ref"));
        assert_eq!(v.as_str(), Some("B"));
        assert_eq!(v.span.start, Pos { line: 3, col: 12 });
        let l = a.get("List").unwrap();
        assert_eq!(l.tag.as_deref(), Some("!GetAtt"));
        assert!(matches!(&l.kind, Kind::Seq(items) if items.len() == 2));
    }

    #[test]
    fn rejects_duplicate_keys_with_both_lines() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 1 });
        assert!(
            e.message
                .contains("duplicate key `a` (first defined on line 1)")
        );
    }

    #[test]
    fn rejects_several_documents() {
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("second YAML document"));
    }

    #[test]
    fn expands_aliases_but_not_without_bound() {
        let doc = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(doc.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                std::iter::repeat_n(prev.as_str(), 10)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let e = parse(&bomb).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
    }

    /// The alias bomb of a few hundred bytes over a 1 MiB string: refused at the first alias
    /// past the budget, with its position, before anything is copied.
    #[test]
    fn refuses_aliases_of_a_long_string_beyond_the_budget() {
        let long = "x".repeat(1024 * 1024);
        let mut doc = format!("big: &s {long}\nlist:\n");
        for _ in 0..20 {
            doc.push_str("  - *s\n");
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("through aliases"), "{}", e.message);
        assert!(e.message.contains("10 times its own size"), "{}", e.message);
        // The document is 1 MiB and a bit: ten copies of the string fit in its budget (the
        // anchored one and nine aliases), the tenth alias does not.
        assert_eq!(e.pos, Pos { line: 12, col: 5 });
        // The same document with the copies a small document may make is accepted.
        let mut ok = "s: &s abcdefgh\nlist:\n".to_string();
        for _ in 0..1000 {
            ok.push_str("  - *s\n");
        }
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn the_budget_grows_with_the_document_within_its_bounds() {
        assert_eq!(Budget::for_document(10).max_bytes, MIN_EXPANDED_BYTES);
        assert_eq!(Budget::for_document(1_000_000).max_bytes, 10_000_000);
        assert_eq!(
            Budget::for_document(usize::MAX).max_bytes,
            MAX_EXPANDED_BYTES
        );
        let e = parse_within(
            "a: &a [1, 2, 3]\nb: [*a, *a]\n",
            Budget {
                max_bytes: 1000,
                max_nodes: 10,
            },
        )
        .unwrap_err();
        assert!(e.message.contains("more than 10 nodes"), "{}", e.message);
        // `a`, the list and its three items, `b`, then four more with the first alias: ten.
        assert_eq!(e.pos, Pos { line: 2, col: 9 });
    }

    /// Without aliases, a document's expanded size is at most its length: no document is
    /// refused for its size alone.
    #[test]
    fn a_document_without_aliases_never_exceeds_its_budget() {
        let mut doc = String::new();
        for i in 0..40_000 {
            doc.push_str(&format!("- [a, b, {{k{i}: v}}]\n"));
        }
        let len = doc.len();
        assert!(
            parse_within(
                &doc,
                Budget {
                    max_bytes: len,
                    max_nodes: len
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn finds_a_duplicate_among_many_keys() {
        let mut doc = String::new();
        for i in 0..50_000 {
            doc.push_str(&format!("k{i}: {i}\n"));
        }
        assert!(parse(&doc).is_ok());
        doc.push_str("k123: again\n");
        let e = parse(&doc).unwrap_err();
        assert!(
            e.message
                .contains("duplicate key `k123` (first defined on line 124)"),
            "{}",
            e.message
        );
        assert_eq!(e.pos.line, 50_001);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1);
        assert!(!e.message.is_empty());
    }

    #[test]
    fn json_is_yaml() {
        let doc = parse("{\"a\": {\"Ref\": \"B\"}, \"n\": [1, 2.5, true, null]}").unwrap();
        assert_eq!(
            doc.get("a").unwrap().get("Ref").unwrap().as_str(),
            Some("B")
        );
    }
}
