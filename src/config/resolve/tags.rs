//! A unit's tags: the pipeline's defaults, the stack's, the environment's and the environment's
//! for the stack, later ones winning; each filled in and held to CloudFormation's limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::scope::{Scope, static_value};
use super::unit::StackInEnv;
use crate::config::load::Pipeline;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::Spanned;

/// CloudFormation's limits on tags. Source: AWS CloudFormation `Tag` data type reference.
const MAX_TAGS: usize = 50;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// A tag, as written: the file, the key and the value.
type WrittenTag<'a> = (&'a Arc<str>, &'a Spanned<String>, &'a Spanned<String>);

/// An error for tag key `k`, written in `file`, which uses the prefix AWS reserves.
pub(super) fn reserved_tag(file: &Arc<str>, k: &Spanned<String>) -> Diagnostic {
    Diagnostic::error(format!(
        "tag key `{}` uses the reserved `aws:` prefix",
        k.value
    ))
    .at(Loc::new(file, k.span))
    .help("AWS reserves tag keys starting with `aws:`; choose another key")
}

/// The tags of `s`, those with problems left out (reported).
pub(super) fn resolve_tags(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for (file, k, v) in written_tags(s) {
        if let Some(value) = tag_value(s.p, scope, file, k, v, d) {
            tags.insert(k.value.clone(), value);
        }
    }
    if tags.len() > MAX_TAGS {
        d.push(
            Diagnostic::error(format!(
                "stack `{}` in environment `{}` would get {} tags; CloudFormation allows {MAX_TAGS}",
                s.key.value,
                s.env.name,
                tags.len()
            ))
            .at(Loc::new(&s.p.file, s.key.span)),
        );
    }
    tags
}

/// Every tag written for `s`, in the order they apply.
fn written_tags<'a>(s: &StackInEnv<'a>) -> Vec<WrittenTag<'a>> {
    let (p, env) = (s.p, s.env);
    let (pf, ef) = (&p.file, &env.file);
    let mut out: Vec<WrittenTag<'a>> = Vec::new();
    out.extend(p.def.defaults.tags.iter().map(|(k, v)| (pf, k, v)));
    out.extend(s.stack.tags.iter().map(|(k, v)| (pf, k, v)));
    out.extend(env.def.tags.iter().map(|(k, v)| (ef, k, v)));
    if let Some(o) = s.over {
        out.extend(o.tags.iter().map(|(k, v)| (ef, k, v)));
    }
    out
}

/// A tag's value filled in; `None` when the key or the value is not allowed (reported).
fn tag_value(
    p: &Pipeline,
    scope: &Scope<'_>,
    file: &Arc<str>,
    k: &Spanned<String>,
    v: &Spanned<String>,
    d: &mut Diagnostics,
) -> Option<String> {
    if k.starts_with("aws:") {
        d.push(reserved_tag(file, k));
        return None;
    }
    if k.chars().count() > MAX_TAG_KEY {
        d.push(
            Diagnostic::error(format!("tag key is longer than {MAX_TAG_KEY} characters"))
                .at(Loc::new(file, k.span)),
        );
        return None;
    }
    let value = static_value(p, file, v, scope, "a tag value", d)?;
    if value.chars().count() > MAX_TAG_VALUE {
        d.push(
            Diagnostic::error(format!(
                "tag value is longer than {MAX_TAG_VALUE} characters"
            ))
            .at(Loc::new(file, v.span)),
        );
        return None;
    }
    Some(value)
}
