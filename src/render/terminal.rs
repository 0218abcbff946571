//! Text for terminals: control characters made visible, so that text from templates, AWS or
//! the config cannot move the cursor or change colours, and ANSI styling that is off unless
//! asked for. Shared by the text renderings of plans and drift reports, which add their own
//! colours of actions and states.

use std::fmt::Write as _;

/// `s` with control characters (other than tabs) written as `\u{1b}`.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// ANSI styling, off unless `color`.
#[derive(Clone, Copy)]
pub(crate) struct Style {
    pub(crate) color: bool,
}

impl Style {
    /// `s` made printable, in colour `code` when colours are on.
    pub(crate) fn paint(self, code: &str, s: &str) -> String {
        let s = printable(s);
        if self.color && !s.is_empty() {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s
        }
    }

    pub(crate) fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }

    pub(crate) fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }

    pub(crate) fn red(self, s: &str) -> String {
        self.paint("31", s)
    }

    pub(crate) fn yellow(self, s: &str) -> String {
        self.paint("33", s)
    }
}
