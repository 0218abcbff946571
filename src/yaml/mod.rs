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

/// The largest number of nodes a document may expand to through aliases. A few kilobytes of
/// nested aliases can otherwise stand for billions of nodes.
const MAX_NODES: usize = 1_000_000;

/// How deep collections may nest; deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 256;

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
}

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
    }
}

/// Parses one YAML document. An empty file gives a null scalar at 1:1. A stream of several
/// documents is refused: every formwork file holds one.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
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

enum Open {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        Kind::Scalar(_) => 1,
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
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
                    });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
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
                self.nodes += 1;
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(SyntaxError {
                        message: "alias to an unknown anchor".into(),
                        pos: span.start,
                    });
                };
                self.nodes += count_nodes(&node);
                if self.nodes > MAX_NODES {
                    return Err(SyntaxError {
                        message: format!(
                            "the document expands to more than {MAX_NODES} nodes through aliases"
                        ),
                        pos: span.start,
                    });
                }
                self.finish(node, 0)?;
            }
            Event::SequenceStart(anchor, tag) => {
                self.open_check(span)?;
                let node = Node {
                    kind: Kind::Seq(Vec::new()),
                    span,
                    tag: tag.map(|t| tag_text(&t)),
                };
                self.stack.push(Open::Seq(node, anchor));
            }
            Event::MappingStart(anchor, tag) => {
                self.open_check(span)?;
                let node = Node {
                    kind: Kind::Map(Vec::new()),
                    span,
                    tag: tag.map(|t| tag_text(&t)),
                };
                self.stack.push(Open::Map(node, anchor, None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, anchor) = match self.stack.pop() {
                    Some(Open::Seq(n, a)) | Some(Open::Map(n, a, None)) => (n, a),
                    Some(Open::Map(_, _, Some(_))) | None => {
                        return Err(SyntaxError {
                            message: "unbalanced YAML structure".into(),
                            pos: span.start,
                        });
                    }
                };
                let last_end = match &node.kind {
                    Kind::Seq(items) => items.last().map(|n| n.span.end),
                    Kind::Map(pairs) => pairs.last().map(|(_, v)| v.span.end),
                    Kind::Scalar(_) => None,
                };
                node.span.end = last_end.unwrap_or(span.end).max(node.span.start);
                self.nodes += 1;
                self.finish(node, anchor)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open_check(&self, span: Span) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(SyntaxError {
                message: format!("nesting deeper than {MAX_DEPTH} levels"),
                pos: span.start,
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), SyntaxError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(seq, _)) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Open::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Kind::Map(pairs) = &mut map.kind {
                        if let Some(text) = key.as_str()
                            && let Some((first, _)) =
                                pairs.iter().find(|(k, _)| k.as_str() == Some(text))
                        {
                            return Err(SyntaxError {
                                message: format!(
                                    "duplicate key `{text}` (first defined on line {}); each key may appear once in a mapping",
                                    first.span.start.line
                                ),
                                pos: key.span.start,
                            });
                        }
                        pairs.push((key, node));
                    }
                }
            },
        }
        Ok(())
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
