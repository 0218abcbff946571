//! Markdown building blocks shared by the pull-request renderings: escaping text for where it
//! lands (inline content, table cells, HTML), code spans and fences that their content cannot
//! close, and clipping.

/// Cuts `s` to `max` characters, with `…`.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Escapes text for Markdown inline content (paragraphs, list items, table cells): characters
/// with a meaning to Markdown or GitHub (emphasis, links, code, HTML, tables, math, mentions,
/// issue references) get a backslash, and so do those that would start a list or heading at the
/// start; line breaks become spaces.
pub(crate) fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in s.chars().enumerate() {
        let escape = match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' | '@' | '$' => {
                true
            }
            '-' | '+' | '=' => i == 0,
            '.' | ')' => digits > 0 && i == digits,
            _ => false,
        };
        if c == '\n' || c == '\r' {
            out.push(' ');
            continue;
        }
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An inline code span holding `s` literally: delimited by one more backtick than the longest
/// run inside, padded when `s` starts or ends with a backtick; line breaks become spaces.
pub(crate) fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.is_empty() {
        return "*empty*".to_string();
    }
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    if s.starts_with('`') || s.ends_with('`') || (s.starts_with(' ') && s.ends_with(' ')) {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

/// A code span for a table cell: pipes escaped (GitHub unescapes them inside code in tables).
pub(crate) fn cell_code(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// Escapes text for HTML content and attributes.
pub(crate) fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn longest_backtick_run(s: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A backtick fence that no line of `content` can close: one backtick more than the longest
/// run in it, at least three.
pub(crate) fn fence_for(content: &str) -> String {
    "`".repeat((longest_backtick_run(content) + 1).max(3))
}
