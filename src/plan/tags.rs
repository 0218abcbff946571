//! The tags formwork puts on a stack: the config's, which pipeline and environment it belongs
//! to, and the commit that last changed it — when that cannot replace a resource.

use std::collections::BTreeMap;

use crate::desired::{DesiredEnvironment, Unit};
use crate::plan::model::RequiresRecreation;

/// The tag that names the commit a stack was last changed by.
pub const COMMIT_TAG: &str = "formwork:commit";

/// The stack's tags as formwork sets them: the config's; which pipeline and environment the
/// stack belongs to; and the commit being planned, when that is safe. CloudFormation puts stack
/// tags on every resource, and some resource types cannot change their tags without being
/// replaced: a stack holding one does not get the commit tag (a new value with every commit
/// would replace that resource every time), nor does a stack whose template formwork cannot
/// read.
pub fn stack_tags(env: &DesiredEnvironment, unit: &Unit, commit: &str) -> Vec<(String, String)> {
    let mut tags: BTreeMap<String, String> = unit.tags.clone();
    tags.insert("formwork:pipeline".into(), env.pipeline.clone());
    tags.insert("formwork:environment".into(), env.name.clone());
    if commit_tag_is_safe(unit) {
        tags.insert(COMMIT_TAG.into(), commit.to_string());
    }
    tags.into_iter().collect()
}

/// Whether every resource of the unit's template can take a changed tag without replacement.
fn commit_tag_is_safe(unit: &Unit) -> bool {
    unit.template.parsed().is_some_and(|t| {
        t.resources.values().all(|r| {
            crate::template::replacement::requires_recreation(&r.type_, "Tags")
                != Some(RequiresRecreation::Always)
        })
    })
}

/// Tags without the commit tag, for comparing what is deployed with what is planned.
pub(super) fn without_commit(
    tags: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    tags.into_iter().filter(|(k, _)| k != COMMIT_TAG).collect()
}
