//! Sticky comments: one comment (or a numbered run of them) per pull request and kind, found by
//! a hidden marker on its first line and edited in place, so a pull request never collects a
//! new comment per push.
//!
//! The marker is an HTML comment, invisible on GitHub:
//! `<!-- formwork:plan scope=* part=1 -->`. The kind is `plan` or `apply`; the scope is `*`
//! for a plan of every affected environment, or the sorted environment names when a run was
//! limited to some (so jobs that plan environments separately keep a comment each); the part is
//! the comment's number in the run. Only a comment whose body starts with a marker counts: a
//! reply that quotes one starts with `>`.

use super::client::{Comment, GitHub, GitHubError};

/// Which sticky comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Plan,
    Apply,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Plan => "plan",
            Kind::Apply => "apply",
        }
    }
}

/// The identity of a sticky comment run: its kind and scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sticky {
    pub kind: Kind,
    scope: String,
}

impl Sticky {
    /// A sticky comment run for these environments (none: all of them).
    pub fn new(kind: Kind, environments: &[String]) -> Sticky {
        let scope = if environments.is_empty() {
            "*".to_string()
        } else {
            let mut e: Vec<&str> = environments.iter().map(String::as_str).collect();
            e.sort_unstable();
            e.dedup();
            e.join(",")
        };
        Sticky { kind, scope }
    }

    /// The first line of part `n` (from 1).
    pub fn marker(&self, part: usize) -> String {
        format!("{}{part} -->", self.marker_start())
    }

    /// The part number of a comment of this run, from its body.
    pub fn part_of(&self, body: &str) -> Option<usize> {
        let first = body.lines().next()?.trim_end();
        let rest = first.strip_prefix(&self.marker_start())?;
        let n = rest.strip_suffix(" -->")?;
        n.parse().ok().filter(|&n| n >= 1)
    }

    /// The marker up to the part number.
    fn marker_start(&self) -> String {
        format!(
            "<!-- formwork:{} scope={} part=",
            self.kind.as_str(),
            self.scope
        )
    }
}

/// Which kind of sticky comment a comment is, whatever its scope, from its body.
pub fn kind_of(body: &str) -> Option<Kind> {
    let rest = body.strip_prefix("<!-- formwork:")?;
    [Kind::Plan, Kind::Apply]
        .into_iter()
        .find(|k| rest.starts_with(&format!("{} ", k.as_str())))
}

/// What [`publish`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// The comments of the run now, in part order: (id, URL where GitHub gave one).
    pub comments: Vec<(u64, Option<String>)>,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
}

/// Makes the pull request's comments of this run read `parts`: part `i` edits the comment that
/// held part `i` before (or is created), parts the previous run had beyond these are deleted,
/// and a duplicate of a part (two runs racing) is deleted too. A part whose text is already
/// there is not sent again.
pub async fn publish(
    gh: &GitHub,
    pr: u64,
    sticky: &Sticky,
    parts: &[String],
) -> Result<Published, GitHubError> {
    let existing = gh.comments(pr).await?;
    let mut by_part: Vec<Option<Comment>> = Vec::new();
    let mut surplus: Vec<u64> = Vec::new();
    for c in existing {
        let Some(n) = c.body.as_deref().and_then(|b| sticky.part_of(b)) else {
            continue;
        };
        if n > parts.len() {
            surplus.push(c.id);
            continue;
        }
        if by_part.len() < n {
            by_part.resize(n, None);
        }
        if by_part[n - 1].is_some() {
            // The oldest of duplicates stays where it is.
            surplus.push(c.id);
        } else {
            by_part[n - 1] = Some(c);
        }
    }
    let mut out = Published::default();
    for (i, text) in parts.iter().enumerate() {
        let body = format!("{}\n{text}", sticky.marker(i + 1));
        match by_part.get(i).cloned().flatten() {
            Some(c) if c.body.as_deref() == Some(body.as_str()) => {
                out.unchanged += 1;
                out.comments.push((c.id, c.html_url));
            }
            Some(c) => {
                let c2 = gh.update_comment(c.id, &body).await?;
                out.updated += 1;
                out.comments.push((c.id, c2.html_url.or(c.html_url)));
            }
            None => {
                let c = gh.create_comment(pr, &body).await?;
                out.created += 1;
                out.comments.push((c.id, c.html_url));
            }
        }
    }
    for id in surplus {
        match gh.delete_comment(id).await {
            Ok(()) => out.deleted += 1,
            // Someone removed it first.
            Err(GitHubError::Api { status: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_do_not_cross() {
        let all = Sticky::new(Kind::Plan, &[]);
        let some = Sticky::new(
            Kind::Plan,
            &["staging".into(), "production".into(), "staging".into()],
        );
        let apply = Sticky::new(Kind::Apply, &[]);
        assert_eq!(all.marker(2), "<!-- formwork:plan scope=* part=2 -->");
        assert_eq!(
            some.marker(1),
            "<!-- formwork:plan scope=production,staging part=1 -->"
        );
        let body = format!("{}\n## plan", all.marker(3));
        assert_eq!(all.part_of(&body), Some(3));
        assert_eq!(some.part_of(&body), None);
        assert_eq!(apply.part_of(&body), None);
        // Quoted in a reply, or not on the first line: not ours.
        assert_eq!(all.part_of(&format!("> {}", all.marker(1))), None);
        assert_eq!(all.part_of(&format!("hello\n{}", all.marker(1))), None);
        assert_eq!(all.part_of("<!-- formwork:plan scope=* part=0 -->"), None);
        assert_eq!(all.part_of("<!-- formwork:plan scope=* part=x -->"), None);
        assert_eq!(
            all.part_of("<!-- formwork:plan scope=* part=1 -->\r\nx"),
            Some(1)
        );
    }
}
