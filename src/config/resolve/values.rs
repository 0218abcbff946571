//! Config values as expressions: a value written in a file parsed into an [`Expr`], and the
//! place inside it that a problem concerns.

use std::sync::Arc;

use crate::config::expr::{self, Expr, Reference};
use crate::config::model::ParamValue;
use crate::diag::{Diagnostic, Loc, Pos, Span};
use crate::yaml::Spanned;

/// The span of characters `offset..offset+len` inside a scalar written at `s`, when the scalar
/// sits on one line as written (plain or quoted); else the whole scalar.
pub(super) fn inner_span(span: Span, text: &str, offset: usize, len: usize) -> Span {
    let n = text.chars().count() as u32;
    if span.start.line != span.end.line {
        return span;
    }
    let width = span.end.col.saturating_sub(span.start.col);
    let shift = if width == n {
        0
    } else if width == n + 2 {
        1
    } else {
        return span;
    };
    Span::on_line(
        Pos {
            line: span.start.line,
            col: span.start.col + shift + offset as u32,
        },
        len as u32,
    )
}

/// Parses the expressions of a config value; a list is parsed item by item and joined with
/// commas. Errors point into the string where it can.
pub(super) fn parse_value(file: &Arc<str>, v: &Spanned<ParamValue>) -> Result<Expr, Diagnostic> {
    let parse_one = |text: &str| {
        expr::parse(text).map_err(|e| {
            Diagnostic::error(e.message)
                .at(Loc::new(file, inner_span(v.span, text, e.offset, e.len)))
                .help_opt(e.help)
        })
    };
    match &v.value {
        ParamValue::Scalar(s) => parse_one(s),
        ParamValue::List(items) => {
            let mut segments = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    segments.push(expr::Segment::Text(",".into()));
                }
                segments.extend(parse_one(item)?.segments);
            }
            // Re-join adjacent text.
            Ok(Expr { segments }.substitute(&mut |_| None))
        }
    }
}

/// Parses the expressions of a config value that is one string.
pub(super) fn parse_string(file: &Arc<str>, v: &Spanned<String>) -> Result<Expr, Diagnostic> {
    parse_value(
        file,
        &Spanned::new(ParamValue::Scalar(v.value.clone()), v.span),
    )
}

/// Where a config value was written, to point at the part of it that a problem concerns.
pub(super) struct At<'a> {
    file: &'a Arc<str>,
    span: Span,
    /// The scalar's text, when the value is one string.
    text: Option<&'a str>,
}

impl<'a> At<'a> {
    pub(super) fn value(file: &'a Arc<str>, v: &'a Spanned<ParamValue>) -> At<'a> {
        At {
            file,
            span: v.span,
            text: match &v.value {
                ParamValue::Scalar(s) => Some(s),
                ParamValue::List(_) => None,
            },
        }
    }

    pub(super) fn string(file: &'a Arc<str>, v: &'a Spanned<String>) -> At<'a> {
        At {
            file,
            span: v.span,
            text: Some(&v.value),
        }
    }

    /// The whole value.
    pub(super) fn whole(&self) -> Loc {
        Loc::new(self.file, self.span)
    }

    /// The reference `r` inside the value, or the whole value when it cannot be found.
    pub(super) fn of(&self, r: &Reference) -> Loc {
        let written = r.to_string();
        match self.text.and_then(|t| t.find(&written).map(|b| (t, b))) {
            Some((t, byte)) => Loc::new(
                self.file,
                inner_span(
                    self.span,
                    t,
                    t[..byte].chars().count(),
                    written.chars().count(),
                ),
            ),
            None => self.whole(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_span_maps_offsets_into_plain_and_quoted_scalars() {
        let plain = Span::on_line(Pos { line: 3, col: 10 }, 5);
        assert_eq!(
            inner_span(plain, "ab${x", 2, 2).start,
            Pos { line: 3, col: 12 }
        );
        let quoted = Span::on_line(Pos { line: 3, col: 10 }, 7);
        assert_eq!(
            inner_span(quoted, "ab${x", 2, 2).start,
            Pos { line: 3, col: 13 }
        );
        let block = Span {
            start: Pos { line: 3, col: 10 },
            end: Pos { line: 5, col: 1 },
        };
        assert_eq!(inner_span(block, "ab${x", 2, 2), block);
    }
}
