//! Apply requirements (docs/apply-requirements.md): what a pull request must meet on GitHub
//! before formwork applies it to an environment — `approved` (approving reviews, optionally
//! by members of teams or by the code owners of each changed file), `mergeable` and
//! `undiverged`. Each one is judged from what GitHub says now; those about merging are
//! judged only before merging. What is not met is said requirement by requirement.

pub mod codeowners;
pub mod inputs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use self::codeowners::CodeOwners;
use super::client::{GitHub, GitHubError, PullRequest, Review};
use crate::desired::{ApplyRequirements, Approval};

/// How often to ask again while GitHub is still working out whether a pull request merges.
const MERGEABLE_ATTEMPTS: u32 = 4;

/// One requirement that is not met, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmet {
    /// `approved`, `mergeable` or `undiverged`.
    pub requirement: &'static str,
    pub why: String,
}

/// What the pull request changes, for `approved.codeowners`.
#[derive(Debug, Default)]
pub struct Changes {
    /// The paths it changes, relative to the repository's root.
    pub paths: Vec<String>,
    /// `CODEOWNERS` of its base, when there is one.
    pub owners: Option<CodeOwners>,
}

/// The requirements of `req` that the pull request `pull` (none: the commit came without
/// one) does not meet. `before_merge`: it is still open, so `mergeable` and `undiverged`
/// apply too.
pub async fn unmet(
    gh: &GitHub,
    req: &ApplyRequirements,
    pull: Option<&PullRequest>,
    before_merge: bool,
    changes: &Changes,
) -> Result<Vec<Unmet>, GitHubError> {
    let mut out = Vec::new();
    if req.is_empty() {
        return Ok(out);
    }
    let Some(pull) = pull else {
        if req.approved.is_some() {
            out.push(Unmet {
                requirement: "approved",
                why: "no pull request brought this commit, so no review approved it".into(),
            });
        }
        return Ok(out);
    };
    if let Some(approval) = &req.approved {
        let reviews = gh.reviews(pull.number).await?;
        let mut teams = Teams::new(gh);
        out.extend(approved(&mut teams, approval, pull, &reviews, changes).await?);
    }
    if before_merge && req.mergeable {
        out.extend(mergeable(gh, pull).await?);
    }
    if before_merge && req.undiverged {
        let behind = gh.behind_by(&pull.base.git_ref, &pull.head.sha).await?;
        if behind > 0 {
            out.push(Unmet {
                requirement: "undiverged",
                why: format!(
                    "it is {behind} commit{} behind `{}`: merge `{}` into it or rebase it, then plan again",
                    if behind == 1 { "" } else { "s" },
                    pull.base.git_ref,
                    pull.base.git_ref
                ),
            });
        }
    }
    Ok(out)
}

/// The refusal of an apply, said requirement by requirement (Markdown that reads as text).
pub fn refusal(environment: &str, unmet: &[Unmet]) -> String {
    let mut s = format!(
        "Not applied to `{environment}`: its apply requirements are not met (docs/apply-requirements.md).\n"
    );
    for u in unmet {
        s.push_str(&format!("\n- `{}`: {}", u.requirement, u.why));
    }
    s
}

/// The reviewers whose latest decisive review (approved, changes requested or dismissed)
/// approves; with `head_only`, only approvals of commit `head` count. The author is not
/// counted.
pub fn approvers(reviews: &[Review], author: Option<&str>, head: Option<&str>) -> Vec<String> {
    let mut latest: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for r in reviews {
        let Some(user) = &r.user else { continue };
        if !matches!(
            r.state.as_str(),
            "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED"
        ) {
            continue;
        }
        let of_head = head.is_none_or(|h| r.commit_id.as_deref() == Some(h));
        latest.insert(user.login.to_lowercase(), (r.state.clone(), of_head));
    }
    latest
        .into_iter()
        .filter(|(login, (state, of_head))| {
            state == "APPROVED" && *of_head && author.is_none_or(|a| !a.eq_ignore_ascii_case(login))
        })
        .map(|(login, _)| login)
        .collect()
}

async fn approved(
    teams: &mut Teams<'_>,
    approval: &Approval,
    pull: &PullRequest,
    reviews: &[Review],
    changes: &Changes,
) -> Result<Vec<Unmet>, GitHubError> {
    let head = approval.dismiss_stale.then_some(pull.head.sha.as_str());
    let author = pull.user.as_ref().map(|u| u.login.as_str());
    let mut by = approvers(reviews, author, head);
    let mut outsiders = Vec::new();
    if !approval.teams.is_empty() {
        let mut members = Vec::new();
        for user in by {
            if teams.any_member(&approval.teams, &user).await? {
                members.push(user);
            } else {
                outsiders.push(format!("@{user}"));
            }
        }
        by = members;
    }
    let mut out = Vec::new();
    if (by.len() as u64) < u64::from(approval.count) {
        let whose = match approval.teams.as_slice() {
            [] => String::new(),
            t => format!(
                " by members of {}",
                t.iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let of_head = if approval.dismiss_stale {
            format!(" of its head commit {}", short(&pull.head.sha))
        } else {
            String::new()
        };
        let have = match by.as_slice() {
            [] => "none".to_string(),
            b => b
                .iter()
                .map(|u| format!("@{u}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut why = format!(
            "{} approving review{}{whose}{of_head} needed, {} counted ({have})",
            approval.count,
            if approval.count == 1 { "" } else { "s" },
            by.len()
        );
        if !outsiders.is_empty() {
            why.push_str(&format!(
                "; not counted: {}, not in those teams as formwork's GitHub token sees them (it needs to read the organization's members)",
                outsiders.join(", ")
            ));
        }
        out.push(Unmet {
            requirement: "approved",
            why,
        });
    }
    if approval.codeowners {
        let approvers: BTreeSet<String> = by.iter().cloned().collect();
        if let Some(u) = owners_unmet(teams, changes, &approvers).await? {
            out.push(u);
        }
    }
    Ok(out)
}

/// Each changed file with code owners needs an approval by one of them.
async fn owners_unmet(
    teams: &mut Teams<'_>,
    changes: &Changes,
    approvers: &BTreeSet<String>,
) -> Result<Option<Unmet>, GitHubError> {
    let Some(owners) = &changes.owners else {
        return Ok(Some(Unmet {
            requirement: "approved",
            why: format!(
                "code owners must approve, but the base has no CODEOWNERS file ({})",
                codeowners::LOCATIONS.join(", ")
            ),
        }));
    };
    let mut missing: Vec<(String, Vec<String>)> = Vec::new();
    for path in &changes.paths {
        let of = owners.owners_of(path);
        if of.is_empty() {
            continue;
        }
        let mut ok = false;
        for owner in of {
            if owned_by(teams, owner, approvers).await? {
                ok = true;
                break;
            }
        }
        if !ok {
            missing.push((path.clone(), of.to_vec()));
        }
    }
    if missing.is_empty() {
        return Ok(None);
    }
    const SHOWN: usize = 10;
    let mut why = format!(
        "{} changed file{} need{} an approval by a code owner:",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" },
        if missing.len() == 1 { "s" } else { "" }
    );
    for (path, of) in missing.iter().take(SHOWN) {
        why.push_str(&format!("\n  - `{path}` (owners: {})", of.join(", ")));
    }
    if missing.len() > SHOWN {
        why.push_str(&format!("\n  - and {} more", missing.len() - SHOWN));
    }
    Ok(Some(Unmet {
        requirement: "approved",
        why,
    }))
}

/// Whether an approver is `owner` (`@user`) or in it (`@org/team`); an email address owner
/// cannot be matched to a GitHub user and never approves.
async fn owned_by(
    teams: &mut Teams<'_>,
    owner: &str,
    approvers: &BTreeSet<String>,
) -> Result<bool, GitHubError> {
    let Some(name) = owner.strip_prefix('@') else {
        return Ok(false);
    };
    if !name.contains('/') {
        return Ok(approvers.contains(&name.to_lowercase()));
    }
    for user in approvers {
        if teams.member(name, user).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Team membership, asked of GitHub once per team and user.
struct Teams<'a> {
    gh: &'a GitHub,
    known: HashMap<(String, String), bool>,
}

impl<'a> Teams<'a> {
    fn new(gh: &'a GitHub) -> Teams<'a> {
        Teams {
            gh,
            known: HashMap::new(),
        }
    }

    /// Whether `user` is in team `team` (`org/slug`, or `slug` of the repository's owner).
    async fn member(&mut self, team: &str, user: &str) -> Result<bool, GitHubError> {
        let (org, slug) = team
            .split_once('/')
            .unwrap_or((self.gh.repo().owner.as_str(), team));
        let key = (format!("{org}/{slug}").to_lowercase(), user.to_lowercase());
        if let Some(m) = self.known.get(&key) {
            return Ok(*m);
        }
        let m = self.gh.team_member(org, slug, user).await?;
        self.known.insert(key, m);
        Ok(m)
    }

    async fn any_member(&mut self, teams: &[String], user: &str) -> Result<bool, GitHubError> {
        for t in teams {
            if self.member(t, user).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// `mergeable`: not a draft, no conflicts, not blocked or behind by branch protection. GitHub
/// works out mergeability in the background: while it says `null`, ask again a few times.
async fn mergeable(gh: &GitHub, pull: &PullRequest) -> Result<Option<Unmet>, GitHubError> {
    let mut pull = pull.clone();
    for attempt in 1..MERGEABLE_ATTEMPTS {
        if pull.mergeable.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        pull = gh.pull_request(pull.number).await?;
    }
    Ok(not_mergeable(&pull).map(|why| Unmet {
        requirement: "mergeable",
        why,
    }))
}

/// Why GitHub's answer says the pull request cannot be merged (none: it can).
fn not_mergeable(pull: &PullRequest) -> Option<String> {
    let base = &pull.base.git_ref;
    if pull.draft == Some(true) {
        Some("it is a draft: mark it ready for review".to_string())
    } else {
        match (pull.mergeable, pull.mergeable_state.as_deref()) {
            (Some(false), _) | (_, Some("dirty")) => Some(format!(
                "it has conflicts with `{base}`: resolve them, then plan again"
            )),
            (None, _) => Some(
                "GitHub has not yet worked out whether it can be merged: try again in a moment"
                    .to_string(),
            ),
            (_, Some("blocked")) => Some(
                "GitHub reports it blocked by branch protection: a required review or status check is missing".to_string(),
            ),
            (_, Some("behind")) => Some(format!(
                "branch protection requires it to be up to date with `{base}`, and it is behind"
            )),
            _ => None,
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::client::User;

    fn review(user: &str, state: &str, commit: &str) -> Review {
        Review {
            user: Some(User {
                login: user.into(),
                kind: None,
            }),
            state: state.into(),
            commit_id: Some(commit.into()),
        }
    }

    #[test]
    fn a_reviewers_latest_decisive_review_counts() {
        let reviews = [
            review("alice", "APPROVED", "c1"),
            review("bob", "APPROVED", "c1"),
            review("bob", "COMMENTED", "c2"),
            review("carol", "APPROVED", "c1"),
            review("carol", "CHANGES_REQUESTED", "c2"),
            review("dave", "CHANGES_REQUESTED", "c1"),
            review("dave", "APPROVED", "c2"),
            review("erin", "APPROVED", "c1"),
            review("erin", "DISMISSED", "c1"),
            review("Author", "APPROVED", "c2"),
            review("frank", "PENDING", "c2"),
        ];
        assert_eq!(
            approvers(&reviews, Some("author"), None),
            ["alice", "bob", "dave"]
        );
        // Only approvals of the head commit.
        assert_eq!(approvers(&reviews, Some("author"), Some("c2")), ["dave"]);
    }

    #[test]
    fn mergeability_as_github_states_it() {
        let pull = |draft: bool, mergeable: Option<bool>, state: &str| -> PullRequest {
            serde_json::from_value(serde_json::json!({
                "number": 1, "state": "open",
                "head": {"ref": "x", "sha": "h"}, "base": {"ref": "main", "sha": "b"},
                "draft": draft, "mergeable": mergeable, "mergeable_state": state,
            }))
            .unwrap()
        };
        for (p, says) in [
            (pull(false, Some(true), "clean"), None),
            (pull(false, Some(true), "unstable"), None),
            (pull(false, Some(true), "has_hooks"), None),
            (pull(true, Some(true), "draft"), Some("it is a draft")),
            (
                pull(false, Some(false), "dirty"),
                Some("conflicts with `main`"),
            ),
            (
                pull(false, Some(true), "dirty"),
                Some("conflicts with `main`"),
            ),
            (pull(false, None, "unknown"), Some("not yet worked out")),
            (
                pull(false, Some(true), "blocked"),
                Some("blocked by branch protection"),
            ),
            (
                pull(false, Some(true), "behind"),
                Some("requires it to be up to date"),
            ),
        ] {
            match (not_mergeable(&p), says) {
                (None, None) => {}
                (Some(why), Some(s)) => assert!(why.contains(s), "{why}"),
                (got, want) => panic!("{:?}: got {got:?}, want {want:?}", p.mergeable_state),
            }
        }
    }

    #[test]
    fn the_refusal_names_each_requirement() {
        let text = refusal(
            "prod",
            &[
                Unmet {
                    requirement: "approved",
                    why: "1 approving review needed, 0 counted (none)".into(),
                },
                Unmet {
                    requirement: "undiverged",
                    why: "it is 2 commits behind `main`".into(),
                },
            ],
        );
        assert!(text.starts_with("Not applied to `prod`"), "{text}");
        assert!(
            text.contains("- `approved`: 1 approving review needed"),
            "{text}"
        );
        assert!(
            text.contains("- `undiverged`: it is 2 commits behind"),
            "{text}"
        );
    }
}
