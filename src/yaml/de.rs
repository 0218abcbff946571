//! A serde deserializer over [`Node`] trees. Every error carries the span of the node it is
//! about; unknown keys and values come with the nearest known spelling.

use std::fmt::Display;

use serde::de::{
    self, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};

use super::spanned::{SPANNED_FIELDS, SPANNED_NAME};
use super::{Kind, Node, Style, is_null_text};
use crate::diag::Span;
use crate::suggest;

/// A deserialization error: what is wrong, where, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub message: String,
    pub span: Option<Span>,
    pub label: Option<String>,
    pub help: Option<String>,
    /// For an unknown key: the known key it most likely stands for.
    pub suggestion: Option<String>,
}

impl Error {
    fn new(message: String) -> Error {
        Error {
            message,
            span: None,
            label: None,
            help: None,
            suggestion: None,
        }
    }

    fn at(mut self, span: Span) -> Error {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }
}

/// Rewrites serde's type descriptions into the words of a YAML author.
fn plain_expected(exp: &str) -> String {
    if exp.starts_with("struct ") || exp == "a map" || exp.starts_with("map") {
        "a mapping (`key: value` lines)".into()
    } else if exp == "a sequence" {
        "a list".into()
    } else {
        exp.to_string()
    }
}

fn plain_unexpected(u: &Unexpected<'_>) -> String {
    match u {
        Unexpected::Map => "a mapping".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Unit => "nothing (null)".into(),
        Unexpected::Str(s) => format!("the string `{s}`"),
        Unexpected::Bool(b) => format!("the boolean `{b}`"),
        Unexpected::Signed(i) => format!("the number `{i}`"),
        Unexpected::Unsigned(i) => format!("the number `{i}`"),
        Unexpected::Float(f) => format!("the number `{f}`"),
        other => other.to_string(),
    }
}

impl de::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error::new(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error::new(format!(
            "expected {}, found {}",
            plain_expected(&exp.to_string()),
            plain_unexpected(&unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Error::new(format!(
            "invalid value {}: expected {}",
            plain_unexpected(&unexp),
            plain_expected(&exp.to_string())
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Error::new(format!("unknown field `{field}`"));
        e.suggestion = suggest::nearest(field, expected.iter().copied()).map(str::to_string);
        e.label = e
            .suggestion
            .as_ref()
            .map(|s| format!("did you mean `{s}`?"));
        e.help = Some(if expected.is_empty() {
            "no fields are allowed here".into()
        } else {
            format!("the fields allowed here are: {}", expected.join(", "))
        });
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = Error::new(format!("unknown value `{variant}`"));
        e.label = suggest::nearest(variant, expected.iter().copied())
            .map(|s| format!("did you mean `{s}`?"));
        e.help = Some(format!("expected one of: {}", expected.join(", ")));
        e
    }

    fn missing_field(field: &'static str) -> Self {
        let mut e = Error::new(format!("missing field `{field}`"));
        e.help = Some(format!("add `{field}:` here (see docs/config.md)"));
        e
    }
}

/// Deserializes a typed value from a node tree.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, Error> {
    T::deserialize(NodeDe { node })
}

/// How many problems one file may report before formwork stops looking for more.
const MAX_RECOVERIES: usize = 64;

/// Deserializes a typed value, collecting every error instead of stopping at the first: after
/// each error the offending node is repaired in a copy of the tree (an unknown key with a likely
/// meaning is read as that key, anything else is dropped) and deserialization runs again. The
/// value comes back when the repaired tree deserializes; the errors always do.
pub fn from_node_recovering<T: de::DeserializeOwned>(node: &Node) -> (Option<T>, Vec<Error>) {
    let mut tree = node.clone();
    let mut errors: Vec<Error> = Vec::new();
    for _ in 0..MAX_RECOVERIES {
        match T::deserialize(NodeDe { node: &tree }) {
            Ok(v) => return (Some(v), errors),
            Err(e) => {
                // A required field that went missing because an earlier repair dropped it is a
                // consequence, not a new problem.
                let consequence = e.message.starts_with("missing field") && !errors.is_empty();
                let repaired = e
                    .span
                    .is_some_and(|span| repair(&mut tree, span, e.suggestion.as_deref()));
                if !consequence {
                    errors.push(e);
                }
                if !repaired || consequence {
                    return (None, errors);
                }
            }
        }
    }
    (None, errors)
}

/// Repairs the node at `span`: renames a key to `rename`, or removes the pair or list item.
fn repair(node: &mut Node, span: Span, rename: Option<&str>) -> bool {
    match &mut node.kind {
        Kind::Scalar(_) => false,
        Kind::Seq(items) => {
            if let Some(i) = items.iter().position(|n| n.span == span) {
                items.remove(i);
                return true;
            }
            items.iter_mut().any(|n| repair(n, span, rename))
        }
        Kind::Map(pairs) => {
            if let Some(i) = pairs.iter().position(|(k, _)| k.span == span) {
                let taken =
                    rename.is_some_and(|r| pairs.iter().any(|(k, _)| k.as_str() == Some(r)));
                match (rename, &mut pairs[i].0.kind) {
                    (Some(r), Kind::Scalar(s)) if !taken => s.text = r.to_string(),
                    _ => {
                        pairs.remove(i);
                    }
                }
                return true;
            }
            if let Some(i) = pairs.iter().position(|(_, v)| v.span == span) {
                pairs.remove(i);
                return true;
            }
            pairs
                .iter_mut()
                .any(|(k, v)| repair(k, span, rename) || repair(v, span, rename))
        }
    }
}

struct NodeDe<'a> {
    node: &'a Node,
}

impl<'a> NodeDe<'a> {
    fn scalar(&self) -> Option<(&'a str, Style)> {
        match &self.node.kind {
            Kind::Scalar(s) => Some((&s.text, s.style)),
            _ => None,
        }
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.kind {
            Kind::Scalar(s) if s.style == Style::Plain && is_null_text(&s.text) => Unexpected::Unit,
            Kind::Scalar(s) => Unexpected::Str(&s.text),
            Kind::Seq(_) => Unexpected::Seq,
            Kind::Map(_) => Unexpected::Map,
        }
    }

    fn type_error(&self, exp: &dyn Expected) -> Error {
        <Error as de::Error>::invalid_type(self.unexpected(), exp).at(self.node.span)
    }

    fn parse_num<T: std::str::FromStr>(&self, exp: &dyn Expected) -> Result<T, Error> {
        match self.scalar() {
            Some((t, _)) => t.trim().parse::<T>().map_err(|_| self.type_error(exp)),
            None => Err(self.type_error(exp)),
        }
    }
}

macro_rules! number {
    ($method:ident, $visit:ident, $ty:ty, $what:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let span = self.node.span;
            let n: $ty = self.parse_num(&$what)?;
            visitor.$visit::<Error>(n).map_err(|e| e.at(span))
        }
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = Error;

    /// Self-describing reads (parameter values, free-form data): only the canonical spellings
    /// `true`, `false`, decimal integers and plain floats are typed; everything else, `True` and
    /// `0123` included, stays the string it was written as.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let span = self.node.span;
        let r = match &self.node.kind {
            Kind::Scalar(s) if s.style != Style::Plain => visitor.visit_str(&s.text),
            Kind::Scalar(s) => {
                let t = s.text.as_str();
                if is_null_text(t) {
                    visitor.visit_unit()
                } else if t == "true" {
                    visitor.visit_bool(true)
                } else if t == "false" {
                    visitor.visit_bool(false)
                } else if let Some(i) = canonical_int(t) {
                    match i {
                        Ok(u) => visitor.visit_u64(u),
                        Err(i) => visitor.visit_i64(i),
                    }
                } else if let Some(f) = canonical_float(t) {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(t)
                }
            }
            Kind::Seq(items) => visitor.visit_seq(Seq { iter: items.iter() }),
            Kind::Map(pairs) => visitor.visit_map(Map {
                iter: pairs.iter(),
                value: None,
            }),
        };
        r.map_err(|e| e.at(span))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let span = self.node.span;
        match self.scalar() {
            Some(("true" | "True" | "TRUE", Style::Plain)) => visitor.visit_bool(true),
            Some(("false" | "False" | "FALSE", Style::Plain)) => visitor.visit_bool(false),
            _ => Err(self.type_error(&"`true` or `false`")),
        }
        .map_err(|e| e.at(span))
    }

    number!(deserialize_i8, visit_i8, i8, "a whole number");
    number!(deserialize_i16, visit_i16, i16, "a whole number");
    number!(deserialize_i32, visit_i32, i32, "a whole number");
    number!(deserialize_i64, visit_i64, i64, "a whole number");
    number!(deserialize_u8, visit_u8, u8, "a whole number");
    number!(deserialize_u16, visit_u16, u16, "a whole number");
    number!(deserialize_u32, visit_u32, u32, "a whole number");
    number!(deserialize_u64, visit_u64, u64, "a whole number");
    number!(deserialize_f32, visit_f32, f32, "a number");
    number!(deserialize_f64, visit_f64, f64, "a number");

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    /// Any scalar reads as a string, exactly as written (`0123` stays `0123`).
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let span = self.node.span;
        match self.scalar() {
            Some((t, _)) if !self.node.is_null() => visitor.visit_str(t),
            _ => Err(self.type_error(&"a string")),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(self.type_error(&"nothing (null)"))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Lists; an empty value (`key:` with nothing after it) reads as an empty list.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let span = self.node.span;
        match &self.node.kind {
            Kind::Seq(items) => visitor.visit_seq(Seq { iter: items.iter() }),
            _ if self.node.is_null() => visitor.visit_seq(Seq { iter: [].iter() }),
            _ => Err(self.type_error(&"a list")),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    /// Mappings; an empty value reads as an empty mapping.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let span = self.node.span;
        match &self.node.kind {
            Kind::Map(pairs) => visitor.visit_map(Map {
                iter: pairs.iter(),
                value: None,
            }),
            _ if self.node.is_null() => visitor.visit_map(Map {
                iter: [].iter(),
                value: None,
            }),
            _ => Err(self.type_error(&"a mapping (`key: value` lines)")),
        }
        .map_err(|e| e.at(span))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED_NAME && fields == SPANNED_FIELDS {
            return visitor.visit_map(SpannedAccess {
                node: self.node,
                field: 0,
            });
        }
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let span = self.node.span;
        match &self.node.kind {
            Kind::Scalar(s) => visitor
                .visit_enum(Enum {
                    variant: &s.text,
                    variant_span: span,
                    value: None,
                })
                .map_err(|e| e.at(span)),
            Kind::Map(pairs) if pairs.len() == 1 => {
                let (k, v) = &pairs[0];
                match k.as_str() {
                    Some(variant) => visitor
                        .visit_enum(Enum {
                            variant,
                            variant_span: k.span,
                            value: Some(v),
                        })
                        .map_err(|e| e.at(span)),
                    None => Err(Error::new("expected a name here".into()).at(k.span)),
                }
            }
            _ => Err(self.type_error(&"one of the allowed names")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// A decimal integer as YAML's core schema reads one: `Ok` for non-negative, `Err` for negative.
fn canonical_int(t: &str) -> Option<Result<u64, i64>> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    if t.starts_with('-') {
        t.parse::<i64>().ok().map(Err)
    } else {
        digits.parse::<u64>().ok().map(Ok)
    }
}

/// A float whose usual rendering is the same text, so reading it as a number loses nothing.
fn canonical_float(t: &str) -> Option<f64> {
    let f: f64 = t.parse().ok()?;
    (f.is_finite() && f.to_string() == t).then_some(f)
}

struct Seq<'a> {
    iter: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(node) => seed
                .deserialize(NodeDe { node })
                .map(Some)
                .map_err(|e| e.at(node.span)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Map<'a> {
    iter: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(NodeDe { node: k })
                    .map(Some)
                    .map_err(|e| e.at(k.span))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let node = self
            .value
            .take()
            .ok_or_else(|| Error::new("a value without a key".into()))?;
        seed.deserialize(NodeDe { node })
            .map_err(|e| e.at(node.span))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Feeds a [`super::Spanned`] its position fields, then the value itself.
struct SpannedAccess<'a> {
    node: &'a Node,
    field: usize,
}

impl<'de> MapAccess<'de> for SpannedAccess<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.field >= SPANNED_FIELDS.len() {
            return Ok(None);
        }
        let key: de::value::StrDeserializer<'_, Error> =
            SPANNED_FIELDS[self.field].into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let s = self.node.span;
        let field = self.field;
        self.field += 1;
        let n = match field {
            0 => s.start.line,
            1 => s.start.col,
            2 => s.end.line,
            3 => s.end.col,
            _ => return seed.deserialize(NodeDe { node: self.node }),
        };
        seed.deserialize(n.into_deserializer())
    }
}

struct Enum<'a> {
    variant: &'a str,
    variant_span: Span,
    value: Option<&'a Node>,
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Variant<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Variant<'de>), Error> {
        let key: de::value::StrDeserializer<'_, Error> = self.variant.into_deserializer();
        let v = seed.deserialize(key).map_err(|e| e.at(self.variant_span))?;
        Ok((v, Variant { value: self.value }))
    }
}

struct Variant<'a> {
    value: Option<&'a Node>,
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None => Ok(()),
            Some(n) if n.is_null() => Ok(()),
            Some(n) => Err(Error::new("this name takes no value".into()).at(n.span)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(node) => seed.deserialize(NodeDe { node }),
            None => Err(Error::new("this name needs a value".into())),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_seq(NodeDe { node }, visitor),
            None => Err(Error::new("this name needs a list".into())),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_map(NodeDe { node }, visitor),
            None => Err(Error::new("this name needs a mapping".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Spanned, parse};
    use super::*;
    use crate::diag::Pos;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Stack {
        template: Spanned<String>,
        #[serde(default)]
        enabled: Option<bool>,
        #[serde(default)]
        needs: Vec<Spanned<String>>,
    }

    #[test]
    fn unknown_field_points_at_the_key_and_suggests() {
        let doc = parse("tempalte: x.yml\n").unwrap();
        let e = from_node::<Stack>(&doc).unwrap_err();
        assert_eq!(e.message, "unknown field `tempalte`");
        assert_eq!(e.label.as_deref(), Some("did you mean `template`?"));
        assert_eq!(e.span.unwrap().start, Pos { line: 1, col: 1 });
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let doc = parse("template: x.yml\nenabled: maybe\n").unwrap();
        let e = from_node::<Stack>(&doc).unwrap_err();
        assert_eq!(
            e.message,
            "expected `true` or `false`, found the string `maybe`"
        );
        assert_eq!(e.span.unwrap().start, Pos { line: 2, col: 10 });
    }

    #[test]
    fn spanned_values_know_where_they_are() {
        let doc = parse("template: x.yml\nneeds: [a, bb]\n").unwrap();
        let s: Stack = from_node(&doc).unwrap();
        assert_eq!(s.template.span.start, Pos { line: 1, col: 11 });
        assert_eq!(s.needs[1].value, "bb");
        assert_eq!(s.needs[1].span.start, Pos { line: 2, col: 12 });
    }

    #[test]
    fn recovery_reports_every_problem_and_reads_misspelled_keys() {
        let doc = parse("tempalte: x.yml\nenabled: maybe\nneeds: [a, [b]]\nextra: 1\n").unwrap();
        let (v, errors) = from_node_recovering::<Stack>(&doc);
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown field `tempalte`",
                "expected `true` or `false`, found the string `maybe`",
                "expected a string, found a list",
                "unknown field `extra`",
            ]
        );
        let v = v.expect("repaired tree deserializes");
        assert_eq!(v.template.value, "x.yml");
        assert_eq!(v.needs.len(), 1);
    }

    #[test]
    fn recovery_stops_at_a_missing_required_field_without_blaming_it_twice() {
        let doc = parse("template: [1]\n").unwrap();
        let (v, errors) = from_node_recovering::<Stack>(&doc);
        assert!(v.is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].message, "expected a string, found a list");
    }

    #[test]
    fn missing_field_is_named() {
        let doc = parse("enabled: true\n").unwrap();
        let e = from_node::<Stack>(&doc).unwrap_err();
        assert_eq!(e.message, "missing field `template`");
    }

    #[test]
    fn scalars_read_as_written() {
        let doc = parse("[0123, 1.0, 12, -3, 2.5]").unwrap();
        let v: Vec<String> = from_node(&doc).unwrap();
        assert_eq!(v, ["0123", "1.0", "12", "-3", "2.5"]);
        let j: serde_json::Value = from_node(&doc).unwrap();
        assert_eq!(j, serde_json::json!(["0123", "1.0", 12, -3, 2.5]));
    }
}
