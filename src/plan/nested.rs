//! What a unit's nested templates change: the resources of each nested stack whose template
//! is new, changed or gone between two versions (logical ids under the nested stack's,
//! `Network/VPC`), their IAM and network items, and their template diffs. Offline the two versions are the revisions'
//! packaged children; live the deployed ones are read back from the URLs the deployed parent
//! names.

use std::sync::Arc;

use crate::desired::TemplateRef;
use crate::template::conditions::Conditions;
use crate::template::{Template, diff, text_diff};

use super::model::ResourceChange;
use crate::template::change::SecurityChange;

/// One nested template: the nested stack resources leading to it (`App/Db`) and its content.
pub(crate) type Child = (String, Arc<Template>);

/// The children a unit's template carries (none for a URL template).
pub(crate) fn children_of(t: &TemplateRef) -> Vec<Child> {
    match t {
        TemplateRef::Local { nested, .. } => nested
            .iter()
            .map(|n| (n.resource_path.clone(), n.template.clone()))
            .collect(),
        TemplateRef::Url { .. } => Vec::new(),
    }
}

/// What changes inside nested stacks from `before` to `after`: resources and IAM and network
/// items under the nested stack's logical id, and a unified diff per changed child.
#[derive(Default)]
pub(crate) struct Changes {
    pub resources: Vec<ResourceChange>,
    pub security: Vec<SecurityChange>,
    pub template_diff: Option<String>,
}

/// The [`Changes`] from `before` to `after`, diffs with `context` lines (none without).
/// Children's conditions depend on what their parent passes, so they are evaluated as unknown.
pub(crate) fn changes(before: &[Child], after: &[Child], context: Option<usize>) -> Changes {
    let unknown = Conditions::unknown();
    let mut out = Changes::default();
    let mut diffs = String::new();
    for (path, b, a) in pairs(before, after) {
        let resources =
            diff::resource_changes_under(b.map(|t| (t, &unknown)), a.map(|t| (t, &unknown)), &[]);
        out.resources.extend(resources.into_iter().map(|mut c| {
            c.logical_id = format!("{path}/{}", c.logical_id);
            c
        }));
        out.security.extend(
            crate::template::security::security_changes(b, a)
                .into_iter()
                .map(|mut c| {
                    c.resource = format!("{path}/{}", c.resource);
                    c
                }),
        );
        if let Some(context) = context
            && let Some(d) = text_diff::template_diff_labelled(
                b,
                a,
                context,
                &format!("deployed nested stack {path}"),
                &format!("proposed nested stack {path}"),
            )
        {
            diffs.push_str(&d);
        }
    }
    out.template_diff = (!diffs.is_empty()).then_some(diffs);
    out
}

/// The children that differ, paired by resource path: `(path, before, after)`.
fn pairs<'a>(
    before: &'a [Child],
    after: &'a [Child],
) -> Vec<(&'a str, Option<&'a Template>, Option<&'a Template>)> {
    let find = |side: &'a [Child], path: &str| {
        side.iter()
            .find(|(p, _)| p == path)
            .map(|(_, t)| t.as_ref())
    };
    let mut out = Vec::new();
    for (path, a) in after {
        match find(before, path) {
            Some(b) if b.digest() == a.digest() => {}
            b => out.push((path.as_str(), b, Some(a.as_ref()))),
        }
    }
    for (path, b) in before {
        if find(after, path).is_none() {
            out.push((path.as_str(), Some(b.as_ref()), None));
        }
    }
    out
}
