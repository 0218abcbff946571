//! The Markdown form of a plan, for pull-request comments on GitHub, and the splitting of a long
//! rendered plan into several comments.
//!
//! [`plan_markdown`] writes one document: a title naming the planned commit, the summary table,
//! the policy findings, callouts for destructive changes and broadened access, then one collapsible `<details>`
//! section per stack with something to show. Text that comes from the config, the templates or
//! AWS is escaped for where it lands (table cells, HTML, code spans); code fences are made longer
//! than any run of backticks in their content, so no content can close them.
//!
//! [`split_markdown`] cuts a document into comments of at most a given number of characters,
//! at block boundaries where it can; a block bigger than one comment is cut inside, its open
//! fences and `<details>` closed at the end of one part and opened again at the start of the
//! next. [`check_well_formed`] says whether a part keeps fences and `<details>` balanced.
//!
//! The document's parts, a module each: `summary` (the table of stacks), `callouts`
//! (destructive changes, broadened access), `stack` (one stack's section) and `tables` (the
//! tables in it). Splitting: `split` (the parts and their headers), `layout` (packing lines into
//! a part), `blocks` (fences, `<details>` and tables, closed and opened again at a cut) and
//! `well_formed` (the check of a finished part).

mod blocks;
mod callouts;
mod layout;
mod split;
mod stack;
mod summary;
mod tables;
mod well_formed;

use std::fmt::Write as _;

pub use split::{MIN_SPLIT_LIMIT, Split, split_markdown, split_markdown_pointing};
pub use well_formed::{check_well_formed, check_well_formed_within};

use crate::plan::model::Plan;
use crate::render::markdown::{code, md_text};
use crate::render::plan_text::{has_details, short_commit};
use crate::render::plan_totals::Totals;
use callouts::{broadening_callout, destructive_callout, policy_section};
use stack::stack_details;
use summary::summary_table;

/// The most characters GitHub accepts in one comment.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Renders a whole plan as one Markdown document.
pub fn plan_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## formwork plan for {} at {}\n",
        code(&plan.head.rev),
        code(short_commit(&plan.head.commit))
    );
    let mut about = Vec::new();
    if let Some(base) = &plan.base {
        about.push(format!(
            "Compared with {} at {}",
            code(&base.rev),
            code(short_commit(&base.commit))
        ));
    }
    if plan.offline {
        about.push(
            "Offline: made without AWS by comparing the revisions; no change sets were created"
                .to_string(),
        );
    }
    about.push(format!(
        "Plan {}, made {}",
        code(&plan.id),
        md_text(&plan.created_at)
    ));
    let _ = writeln!(out, "{}.\n", about.join(". "));

    summary_table(&mut out, plan);
    let _ = writeln!(out, "{}\n", Totals::of(plan).sentence());
    policy_section(&mut out, plan);
    destructive_callout(&mut out, plan);
    broadening_callout(&mut out, plan);

    for env in &plan.environments {
        for u in env.units.iter().filter(|u| has_details(u)) {
            stack_details(&mut out, plan, &env.name, u);
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
