//! A unit's resources to import (`import:`): the pipeline stack's and the environment's (which
//! win by logical id), each a resource the template declares with a `DeletionPolicy`, its
//! identifier values filled in.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::scope::{Scope, static_value};
use super::unit::StackInEnv;
use crate::desired::Import;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::suggest;
use crate::yaml::Spanned;

type Written = indexmap::IndexMap<Spanned<String>, Spanned<String>>;

/// The resources `s` imports; one with a problem is left out (reported).
pub(super) fn resolve_imports(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> BTreeMap<String, Import> {
    let mut written: BTreeMap<&str, (&Arc<str>, &Spanned<String>, &Written)> = BTreeMap::new();
    for (id, ident) in &s.stack.import {
        written.insert(id.as_str(), (&s.p.file, id, ident));
    }
    if let Some(o) = s.over {
        for (id, ident) in &o.import {
            written.insert(id.as_str(), (&s.env.file, id, ident));
        }
    }
    let mut out = BTreeMap::new();
    for (id, (file, key, ident)) in written {
        if let Some(i) = one(s, scope, file, key, ident, d) {
            out.insert(id.to_string(), i);
        }
    }
    out
}

fn one(
    s: &StackInEnv<'_>,
    scope: &Scope<'_>,
    file: &Arc<str>,
    id: &Spanned<String>,
    ident: &Written,
    d: &mut Diagnostics,
) -> Option<Import> {
    let loc = Loc::new(file, id.span);
    let template = s.template?;
    let Some(decl) = template.resources.get(id.as_str()) else {
        let near = suggest::nearest(id, template.resources.keys().map(String::as_str));
        d.push(
            Diagnostic::error(format!(
                "stack `{}` imports `{}`, which its template does not declare",
                s.key.value, id.value
            ))
            .at(loc)
            .label_opt(near.map(|n| format!("did you mean `{n}`?")))
            .help("declare the resource in the template, with the properties of the existing one and a DeletionPolicy, then name it here"),
        );
        return None;
    };
    let policy = template
        .value()
        .get("Resources")
        .and_then(|r| r.get(id.as_str()))
        .and_then(|r| r.get("DeletionPolicy"));
    if policy.is_none() {
        d.push(
            Diagnostic::error(format!(
                "`{}` is imported, and CloudFormation imports only resources that have a DeletionPolicy",
                id.value
            ))
            .at(loc.clone())
            .help(format!(
                "add `DeletionPolicy: Retain` to resource `{}` in the template",
                id.value
            )),
        );
        return None;
    }
    if ident.is_empty() {
        d.push(
            Diagnostic::error(format!(
                "`{}` is imported without the properties that identify the existing resource",
                id.value
            ))
            .at(loc)
            .help(format!(
                "give its identifier, for {} for example: {}",
                decl.type_,
                example(&decl.type_)
            )),
        );
        return None;
    }
    let mut identifier = BTreeMap::new();
    for (k, v) in ident {
        identifier.insert(
            k.value.clone(),
            static_value(s.p, file, v, scope, "an import identifier", d)?,
        );
    }
    Some(Import {
        resource_type: decl.type_.clone(),
        identifier,
    })
}

/// An identifier of a common resource type, for a help line.
fn example(resource_type: &str) -> &'static str {
    match resource_type {
        "AWS::S3::Bucket" => "`BucketName: my-bucket`",
        "AWS::DynamoDB::Table" => "`TableName: my-table`",
        "AWS::SQS::Queue" => "`QueueUrl: https://sqs.…/my-queue`",
        "AWS::SNS::Topic" => "`TopicArn: arn:aws:sns:…:my-topic`",
        "AWS::Logs::LogGroup" => "`LogGroupName: /my/logs`",
        _ => "the primary identifier properties in the resource type's schema",
    }
}
