//! A document read for splitting: its lines, the blocks open after each, where blocks and
//! sections end, and the packing of lines into one part within a budget of characters.

use std::rc::Rc;

use super::blocks::{Block, Scanner};

/// Where the next part starts: a line, and a character offset in it when a long line was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) line: usize,
    pub(super) offset: usize,
}

/// A document read for splitting: its lines, the blocks open after each, and where blocks end.
pub(super) struct Layout<'a> {
    pub(super) lines: Vec<&'a str>,
    /// The blocks open after each line.
    after: Vec<Rc<Vec<Block>>>,
    /// `cost[i]`: characters of lines `..i`, newlines included.
    cost: Vec<usize>,
    /// For each line, the next line (at or after it) that ends a top-level block, if any.
    next_top: Vec<Option<usize>>,
    /// Likewise for the next blank line with only `<details>` open.
    next_section: Vec<Option<usize>>,
}

impl<'a> Layout<'a> {
    pub(super) fn new(doc: &'a str) -> Layout<'a> {
        let lines: Vec<&str> = doc.lines().collect();
        let mut scanner = Scanner::default();
        let mut after: Vec<Rc<Vec<Block>>> = Vec::with_capacity(lines.len());
        let mut current: Rc<Vec<Block>> = Rc::new(Vec::new());
        for (i, line) in lines.iter().enumerate() {
            // Unbalanced `</details>` is content here: splitting does not judge the document.
            let _ = scanner.feed(line, lines.get(i + 1).copied());
            if *current != scanner.stack {
                current = Rc::new(scanner.stack.clone());
            }
            after.push(current.clone());
        }
        let mut cost = Vec::with_capacity(lines.len() + 1);
        cost.push(0);
        for line in &lines {
            cost.push(cost.last().copied().unwrap_or(0) + line.chars().count() + 1);
        }
        let mut layout = Layout {
            next_top: vec![None; lines.len()],
            next_section: vec![None; lines.len()],
            lines,
            after,
            cost,
        };
        let (mut top, mut section) = (None, None);
        for i in (0..layout.lines.len()).rev() {
            if layout.is_top_boundary(i) {
                top = Some(i);
            }
            if layout.is_section_boundary(i) {
                section = Some(i);
            }
            layout.next_top[i] = top;
            layout.next_section[i] = section;
        }
        layout
    }

    /// After line `i` nothing is open and a block has just ended (a blank line, not the one
    /// after a heading).
    fn is_top_boundary(&self, i: usize) -> bool {
        self.after[i].is_empty() && self.is_break(i)
    }

    /// After line `i` only `<details>` are open, at a blank line between sections.
    fn is_section_boundary(&self, i: usize) -> bool {
        self.is_break(i)
            && self.after[i]
                .iter()
                .all(|b| matches!(b, Block::Details { .. }))
    }

    /// Line `i` is blank and does not follow a heading (`## …`, or a line all in bold), which
    /// stays with what it heads.
    fn is_break(&self, i: usize) -> bool {
        self.lines[i].trim().is_empty() && (i == 0 || !is_heading(self.lines[i - 1]))
    }

    fn open_before(&self, line: usize) -> &[Block] {
        if line == 0 {
            &[]
        } else {
            &self.after[line - 1]
        }
    }

    fn reopen_len(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .flat_map(Block::reopen_lines)
            .map(|l| l.chars().count() + 1)
            .sum()
    }

    fn close_len(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .flat_map(Block::close_lines)
            .map(|l| l.chars().count() + 1)
            .sum()
    }

    /// Whether the lines after a cut at line `cut` up to the boundary `end` fit in one part.
    fn fits_fresh(&self, cut: usize, end: Option<usize>, budget: usize) -> bool {
        let end = end.unwrap_or(self.lines.len() - 1);
        let content = self.cost[end + 1] - self.cost[cut + 1];
        Self::reopen_len(&self.after[cut]) + content + Self::close_len(&self.after[end]) <= budget
    }

    /// The body of one part starting at `start`, within `budget` characters, and where the
    /// next part starts.
    pub(super) fn pack(&self, start: Cursor, budget: usize) -> (Vec<String>, Cursor) {
        let open = self.open_before(start.line);
        let used = Self::reopen_len(open);
        let first_rest: &str = char_tail(self.lines[start.line], start.offset);
        let first_len = first_rest.chars().count() + 1;
        // Size of the part when cut after line `j`.
        let size = |j: usize| {
            used + first_len + self.cost[j + 1] - self.cost[start.line + 1]
                + Self::close_len(&self.after[j])
        };
        let (mut best_top, mut best_section, mut best_any) = (None, None, None);
        let mut nonblank = false;
        let mut end_reached = false;
        for j in start.line..self.lines.len() {
            if used + first_len + self.cost[j + 1] - self.cost[start.line + 1] > budget {
                break;
            }
            nonblank |= !self.lines[j].trim().is_empty();
            if size(j) > budget {
                continue;
            }
            best_any = Some(j);
            if j + 1 == self.lines.len() {
                end_reached = true;
                break;
            }
            if nonblank && self.is_top_boundary(j) {
                best_top = Some(j);
            }
            if nonblank && self.is_section_boundary(j) {
                best_section = Some(j);
            }
        }
        let cut = if end_reached {
            best_any
        } else {
            // A block that fits in the next part whole is not cut. A block too big for one part
            // is cut where the part is full: at a boundary between blocks or sections when that
            // keeps the part three quarters full, else between any two lines.
            let full_enough = |j: &usize| size(*j) * 4 >= budget * 3;
            let top_fits = best_top.filter(|&t| self.fits_fresh(t, self.next_top[t + 1], budget));
            let section_fits =
                best_section.filter(|&s| self.fits_fresh(s, self.next_section[s + 1], budget));
            top_fits
                .or(section_fits)
                .or(best_top.filter(full_enough))
                .or(best_section.filter(full_enough))
                .or(best_any)
        };
        let mut body: Vec<String> = open.iter().flat_map(Block::reopen_lines).collect();
        match cut {
            Some(cut) => {
                body.push(first_rest.to_string());
                body.extend(
                    self.lines[start.line + 1..=cut]
                        .iter()
                        .map(|l| l.to_string()),
                );
                body.extend(self.after[cut].iter().rev().flat_map(Block::close_lines));
                let next = Cursor {
                    line: cut + 1,
                    offset: 0,
                };
                (body, next)
            }
            None => {
                // The line does not fit in a part: cut it, keeping what is open around it. The
                // rest of the line starts the next part.
                let room = budget.saturating_sub(used + Self::close_len(open) + 1);
                let rest_len = first_len - 1;
                let taken = room.clamp(1, rest_len.max(2) - 1);
                body.push(first_rest.chars().take(taken).collect());
                body.extend(open.iter().rev().flat_map(Block::close_lines));
                let next = if taken >= rest_len {
                    Cursor {
                        line: start.line + 1,
                        offset: 0,
                    }
                } else {
                    Cursor {
                        line: start.line,
                        offset: start.offset + taken,
                    }
                };
                (body, next)
            }
        }
    }
}

/// `## Title` or `**Title**`.
fn is_heading(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('#') || (t.len() > 4 && t.starts_with("**") && t.ends_with("**"))
}

/// `s` from its `offset`-th character on.
fn char_tail(s: &str, offset: usize) -> &str {
    match s.char_indices().nth(offset) {
        Some((i, _)) => &s[i..],
        None if offset == 0 => s,
        None => "",
    }
}
