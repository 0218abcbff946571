//! Checking that a comment is well formed for GitHub: within the length limit, its fences and
//! `<details>` balanced.

use super::GITHUB_COMMENT_LIMIT;
use super::blocks::{Block, Scanner};

/// Checks that a comment is well formed for GitHub: at most [`GITHUB_COMMENT_LIMIT`]
/// characters, every code fence closed, every `<details>` closed and none closed that is not
/// open (a `<details>` line inside a fence is content, so they nest properly).
pub fn check_well_formed(part: &str) -> Result<(), String> {
    check_well_formed_within(part, GITHUB_COMMENT_LIMIT)
}

/// [`check_well_formed`] with another length limit.
pub fn check_well_formed_within(part: &str, limit: usize) -> Result<(), String> {
    let len = part.chars().count();
    if len > limit {
        return Err(format!("{len} characters, more than {limit}"));
    }
    let lines: Vec<&str> = part.lines().collect();
    let mut scanner = Scanner::default();
    let mut opened_at: Vec<usize> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let depth = scanner.stack.len();
        scanner
            .feed(line, lines.get(i + 1).copied())
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        // Tables are not checked; keep line numbers of fences and details only.
        if scanner.stack.len() > depth {
            opened_at.push(i + 1);
        } else {
            opened_at.truncate(scanner.stack.len());
        }
    }
    if let Some((block, line)) = scanner
        .stack
        .iter()
        .zip(&opened_at)
        .find(|(b, _)| !matches!(b, Block::Table { .. }))
    {
        let what = match block {
            Block::Fence { .. } => "code fence",
            _ => "`<details>`",
        };
        return Err(format!("{what} opened on line {line} is not closed"));
    }
    Ok(())
}
