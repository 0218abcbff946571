//! Cutting a long rendered document into comments that each fit GitHub's limit, with a header
//! naming each part and, when too many parts would be needed, a note where the rest is.

use super::layout::{Cursor, Layout};

/// The smallest limit [`split_markdown`] works with; smaller limits are raised to it, so that a
/// part always has room for its header and the wrappers it re-opens.
pub const MIN_SPLIT_LIMIT: usize = 1_024;

/// Where the whole plan can be read when the comments had to be cut.
const FULL_PLAN_NOTE: &str = "the full plan is in the check run summary and the job log";

/// A document cut into comments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The comments, in order; each at most the limit in characters.
    pub parts: Vec<String>,
    /// More than `max_parts` comments would have been needed: the last part ends with a note
    /// that the rest was cut.
    pub truncated: bool,
}

/// Cuts a rendered document into comments of at most `limit` characters (Unicode scalar
/// values, as GitHub counts), at most `max_parts` of them.
///
/// A document that fits is returned as it is. Otherwise each part starts with a header
/// (`**formwork plan — part 2 of 3**`) and the document is cut between top-level blocks; a
/// block that does not fit in one part is cut inside, at a blank line between its sections if
/// possible, else between two lines: the fences, tables and `<details>` open at the cut are
/// closed at the end of the part and opened again at the start of the next one (a `<details>`
/// with its summary and ` (continued)`). A single line longer than a part is cut into pieces.
/// When more than `max_parts` parts would be needed, the last one ends with a note that the
/// rest was cut and where the full plan is, and `truncated` is set.
///
/// `limit` is raised to [`MIN_SPLIT_LIMIT`] when smaller; `max_parts` of 0 counts as 1.
pub fn split_markdown(doc: &str, limit: usize, max_parts: usize) -> Split {
    split_markdown_pointing(doc, limit, max_parts, FULL_PLAN_NOTE)
}

/// [`split_markdown`] with another pointer to where the whole plan can be read, for the note
/// that ends a cut run of comments (`pointer` is Markdown, e.g. with a link to the job log).
pub fn split_markdown_pointing(doc: &str, limit: usize, max_parts: usize, pointer: &str) -> Split {
    let limit = limit.max(MIN_SPLIT_LIMIT);
    let max_parts = max_parts.max(1);
    let total_chars = doc.chars().count();
    if total_chars <= limit {
        return Split {
            parts: vec![doc.to_string()],
            truncated: false,
        };
    }
    let layout = Layout::new(doc);
    // Room for the header, sized for the largest part count the document could need (each
    // part takes at least one character), so the cuts do not depend on `max_parts`.
    let header_reserve = part_header(total_chars, total_chars).chars().count() + 2;
    let budget = limit - header_reserve;

    let mut bodies: Vec<Vec<String>> = Vec::new();
    let mut cursor = Cursor { line: 0, offset: 0 };
    let mut truncated = false;
    while cursor.line < layout.lines.len() {
        if bodies.len() + 1 == max_parts {
            let (body, next) = layout.pack(cursor, budget);
            if next.line < layout.lines.len() {
                let note = truncation_note(max_parts, pointer);
                let note_len: usize = note.iter().map(|l| l.chars().count() + 1).sum();
                let (mut body, _) = layout.pack(cursor, budget.saturating_sub(note_len));
                body.extend(note);
                bodies.push(body);
                truncated = true;
            } else {
                bodies.push(body);
            }
            break;
        }
        let (body, next) = layout.pack(cursor, budget);
        bodies.push(body);
        cursor = next;
    }
    let n = bodies.len();
    let parts = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut part = part_header(i + 1, n);
            part.push_str("\n\n");
            for line in body {
                part.push_str(&line);
                part.push('\n');
            }
            part
        })
        .collect();
    Split { parts, truncated }
}

fn part_header(i: usize, n: usize) -> String {
    format!("**formwork plan — part {i} of {n}**")
}

fn truncation_note(max_parts: usize, pointer: &str) -> Vec<String> {
    vec![
        String::new(),
        "---".to_string(),
        String::new(),
        "> [!NOTE]".to_string(),
        format!(
            "> The plan does not fit in {max_parts} comments and was cut here: \
             {pointer}."
        ),
    ]
}
