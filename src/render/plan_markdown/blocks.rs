//! The blocks a split must not break: code fences, `<details>` and tables, followed line by
//! line, with what closes each and what opens it again in the next part.

use std::rc::Rc;

/// A block open at some point of a document: what must be written to close it, and to open
/// it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Block {
    /// `<details>`; `reopen` is its opening line for a continuation.
    Details { reopen: Rc<str> },
    /// A code fence of `len` times `ch`; `open` is its opening line.
    Fence { ch: char, len: usize, open: Rc<str> },
    /// A table; `header` is its header and delimiter rows, when short enough to repeat.
    Table { header: Option<Rc<str>> },
}

impl Block {
    pub(super) fn reopen_lines(&self) -> Vec<String> {
        match self {
            Block::Details { reopen } => vec![reopen.to_string(), String::new()],
            Block::Fence { open, .. } => vec![open.to_string()],
            Block::Table { header: Some(h) } => h.lines().map(String::from).collect(),
            Block::Table { header: None } => Vec::new(),
        }
    }

    pub(super) fn close_lines(&self) -> Vec<String> {
        match self {
            Block::Details { .. } => vec![String::new(), "</details>".to_string()],
            Block::Fence { ch, len, .. } => vec![ch.to_string().repeat(*len)],
            Block::Table { .. } => Vec::new(),
        }
    }
}

/// Follows fences, `<details>` and tables line by line.
#[derive(Default)]
pub(super) struct Scanner {
    pub(super) stack: Vec<Block>,
}

impl Scanner {
    /// Takes one line (`next` is the one after, to recognise tables).
    pub(super) fn feed(&mut self, line: &str, next: Option<&str>) -> Result<(), String> {
        if matches!(self.stack.last(), Some(Block::Table { .. })) && !is_table_row(line) {
            self.stack.pop();
        }
        match self.stack.last() {
            Some(Block::Fence { ch, len, .. }) => {
                if is_fence_close(line, *ch, *len) {
                    self.stack.pop();
                }
            }
            Some(Block::Table { .. }) => {}
            _ => {
                if let Some((ch, len)) = fence_open(line) {
                    self.stack.push(Block::Fence {
                        ch,
                        len,
                        open: reopen_fence_line(line, ch, len).into(),
                    });
                } else if let Some(rest) = details_open(line) {
                    if !rest.contains("</details>") {
                        self.stack.push(Block::Details {
                            reopen: continued_details_line(line).into(),
                        });
                    }
                } else if is_details_close(line) {
                    match self.stack.last() {
                        Some(Block::Details { .. }) => {
                            self.stack.pop();
                        }
                        _ => return Err("`</details>` without an open `<details>`".to_string()),
                    }
                } else if is_table_row(line) && next.is_some_and(is_delimiter_row) {
                    let header = format!("{line}\n{}", next.unwrap_or_default());
                    self.stack.push(Block::Table {
                        header: (header.chars().count() <= 1_000).then(|| header.into()),
                    });
                }
            }
        }
        // A table ends before a line that is not a row: do not carry it past its last row.
        if matches!(self.stack.last(), Some(Block::Table { .. })) && !next.is_some_and(is_table_row)
        {
            self.stack.pop();
        }
        Ok(())
    }
}

/// Up to three spaces of indentation stripped, or `None` for an indented code line.
fn unindent(line: &str) -> Option<&str> {
    let rest = line.trim_start_matches(' ');
    (line.len() - rest.len() <= 3).then_some(rest)
}

/// The character and length of a fence opened by `line`.
fn fence_open(line: &str) -> Option<(char, usize)> {
    let rest = unindent(line)?;
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = &rest[len..];
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((ch, len))
}

fn is_fence_close(line: &str, ch: char, len: usize) -> bool {
    let Some(rest) = unindent(line) else {
        return false;
    };
    let run = rest.chars().take_while(|c| *c == ch).count();
    run >= len && rest[run..].trim().is_empty()
}

/// What follows `<details` when `line` opens a `<details>` element.
fn details_open(line: &str) -> Option<&str> {
    let rest = unindent(line)?.strip_prefix("<details")?;
    (rest.is_empty() || rest.starts_with(['>', ' ', '\t'])).then_some(rest)
}

fn is_details_close(line: &str) -> bool {
    unindent(line).is_some_and(|rest| rest.starts_with("</details>"))
}

fn is_table_row(line: &str) -> bool {
    line.trim_start().starts_with('|')
}

/// `|---|:--:|--:|`
fn is_delimiter_row(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('|')
        && t.contains('-')
        && t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ' | '\t'))
}

/// The opening line of a fence, shortened to its fence and first word when long.
fn reopen_fence_line(line: &str, ch: char, len: usize) -> String {
    if line.chars().count() <= 200 {
        return line.to_string();
    }
    let info: String = line
        .trim_start()
        .trim_start_matches(ch)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take(40)
        .collect();
    format!("{}{info}", ch.to_string().repeat(len))
}

/// The opening line of a `<details>` continued in another part: its summary with
/// ` (continued)`, or a plain one when it has no short summary.
fn continued_details_line(line: &str) -> String {
    match line.find("</summary>") {
        Some(end) if line.chars().count() <= 400 && line.contains("<summary>") => {
            format!("{} (continued)</summary>", &line[..end])
        }
        _ => "<details><summary>(continued)</summary>".to_string(),
    }
}
