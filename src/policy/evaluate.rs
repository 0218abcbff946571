//! Evaluating the rules on planned stacks: the document a rule sees (the template with the
//! environment's parameter values put in for `Ref`s, and what formwork knows of the stack and its
//! planned changes under `Formwork`), Guard's report read back into findings that name the
//! rule, the resource and the template line.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use cfn_guard::CommandBuilder;
use cfn_guard::commands::Executable;
use cfn_guard::commands::validate::{OutputFormatType, ShowSummaryType};
use cfn_guard::utils::reader::{ReadBuffer, Reader};
use cfn_guard::utils::writer::{WriteBuffer, Writer};

use super::rules::Applicable;
use crate::desired::{MASK, TemplateRef, Unit};
use crate::plan::model::{Finding, RuleSeverity, UnitPlan};
use crate::template::Template;

/// The key of the document under which formwork puts what it knows of the stack.
pub const FORMWORK_KEY: &str = "Formwork";

/// One document the rules are evaluated on: a stack's template, or a template of the
/// repository it nests.
pub(super) struct Document<'a> {
    /// The template's path in the repository.
    pub path: &'a str,
    pub template: &'a Template,
    /// The parameter values put in for its `Ref`s (the stack's own template only).
    values: Option<Arc<BTreeMap<String, Value>>>,
    /// What formwork knows of the stack, under [`FORMWORK_KEY`].
    about: Arc<Value>,
}

impl Document<'_> {
    /// What the rules see, as compact JSON (the text Guard reads). Made only for documents
    /// whose result is not known.
    pub fn data(&self) -> String {
        let mut doc = self.template.value().clone();
        if let Some(values) = &self.values {
            put_in_refs(&mut doc, values);
        }
        if let Value::Object(m) = &mut doc {
            m.insert(FORMWORK_KEY.to_string(), (*self.about).clone());
        }
        doc.to_string()
    }

    /// What the document is made of, for the key of its result: the template's canonical
    /// digest, the values put in and what is said of the stack. Equal exactly when the
    /// documents are the same (up to the order of keys), and far cheaper than their text.
    pub fn recipe(&self) -> String {
        let values = self
            .values
            .as_ref()
            .map(|v| serde_json::to_string(v.as_ref()).unwrap_or_default())
            .unwrap_or_default();
        format!("{}\n{values}\n{}", self.template.digest(), self.about)
    }
}

/// The documents of a stack that has a template of the repository: its own template, then
/// each template of the repository it nests. None for a stack given by URL.
pub(super) fn documents<'a>(unit: &'a Unit, plan: &UnitPlan) -> Vec<Document<'a>> {
    let TemplateRef::Local {
        path,
        template,
        nested,
    } = &unit.template
    else {
        return Vec::new();
    };
    let values = parameter_values(unit, plan);
    let about = Arc::new(about_stack(unit, plan, &values));
    let values = Arc::new(values);
    let mut docs = vec![Document {
        path: path.as_str(),
        template: template.as_ref(),
        values: Some(values),
        about: about.clone(),
    }];
    for child in nested.iter() {
        docs.push(Document {
            path: child.path.as_str(),
            template: child.template.as_ref(),
            values: None,
            about: about.clone(),
        });
    }
    docs
}

/// The finding a stack gets when Guard cannot evaluate the rules: nothing passes unchecked.
pub(super) fn not_evaluated(rules: &Applicable<'_>, template: &str, message: &str) -> Finding {
    Finding {
        rule: "(evaluation)".into(),
        file: rules
            .files
            .iter()
            .map(|f| f.path.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        severity: RuleSeverity::Block,
        resource: None,
        path: None,
        template: template.to_string(),
        line: None,
        column: None,
        message: format!("the rules could not be evaluated: {message}"),
        overridden_by: None,
    }
}

/// Runs Guard on documents (their JSON texts) with every rule file in one run (each rule file
/// parsed once), reading its structured report: one record per document, in order, each as
/// its JSON text.
pub(super) fn run_guard(rules: &Applicable<'_>, data: &[&str]) -> Result<Vec<String>, String> {
    let payload = json!({
        "rules": rules.files.iter().map(|f| f.text.as_ref()).collect::<Vec<_>>(),
        "data": data,
    })
    .to_string();
    let guard = |e: cfn_guard::Error| e.to_string();
    let command = cfn_guard::ValidateBuilder::default()
        .payload(true)
        .structured(true)
        .output_format(OutputFormatType::JSON)
        .show_summary(vec![ShowSummaryType::None])
        .try_build()
        .map_err(guard)?;
    let mut writer =
        Writer::new_with_err(WriteBuffer::Vec(Vec::new()), WriteBuffer::Vec(Vec::new()))
            .map_err(guard)?;
    let mut reader = Reader::new(ReadBuffer::Cursor(std::io::Cursor::new(
        payload.into_bytes(),
    )));
    command.execute(&mut writer, &mut reader).map_err(guard)?;
    let text = writer.into_string().map_err(guard)?;
    let records: Vec<Value> = serde_json::from_str(&text)
        .map_err(|e| format!("Guard's report could not be read: {e}"))?;
    let mut out = vec![None; data.len()];
    for (i, record) in records.into_iter().enumerate() {
        // Guard names the documents of a payload DATA_STDIN[1], DATA_STDIN[2], … in order.
        let index = record
            .get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.strip_prefix("DATA_STDIN["))
            .and_then(|n| n.strip_suffix(']'))
            .and_then(|n| n.parse::<usize>().ok())
            .map(|n| n - 1)
            .unwrap_or(i);
        if let Some(slot) = out.get_mut(index) {
            *slot = Some(record.to_string());
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| format!("Guard reported nothing on document {}", i + 1)))
        .collect()
}

/// Parameter values known for the plan, for `Ref`s: plain ones and those the plan resolved;
/// NoEcho and secret values masked.
fn parameter_values(unit: &Unit, plan: &UnitPlan) -> BTreeMap<String, Value> {
    let mut values: BTreeMap<String, Value> = unit
        .known_facts()
        .parameters
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    for p in &plan.parameters {
        if p.known_after_apply {
            continue;
        }
        if let Some(after) = &p.after {
            values.insert(p.name.clone(), Value::String(after.clone()));
        }
    }
    let secret = |name: &str| {
        unit.parameters.get(name).is_some_and(|s| s.no_echo)
            || plan.parameters.iter().any(|p| p.name == name && p.secret)
            || unit
                .template
                .parsed()
                .and_then(|t| t.parameters.get(name))
                .is_some_and(|d| d.no_echo)
    };
    for (name, v) in values.iter_mut() {
        if secret(name) {
            *v = Value::String(MASK.to_string());
        }
    }
    values
}

/// What formwork knows of the stack, under [`FORMWORK_KEY`].
fn about_stack(unit: &Unit, plan: &UnitPlan, values: &BTreeMap<String, Value>) -> Value {
    let changes: Vec<Value> = plan
        .resources
        .iter()
        .map(|r| {
            json!({
                "LogicalResourceId": r.logical_id,
                "ResourceType": r.resource_type,
                "Action": format!("{:?}", r.action),
                "Replacement": format!("{:?}", r.replacement),
            })
        })
        .collect();
    json!({
        "Environment": unit.environment,
        "Stack": unit.stack,
        "StackName": unit.stack_name,
        "Account": unit.account,
        "Region": unit.region,
        "Action": serde_json::to_value(plan.action).unwrap_or(Value::Null),
        "Parameters": values,
        "Tags": unit.tags,
        "Changes": changes,
    })
}

/// Replaces `{"Ref": P}` by P's value wherever P's value is known.
fn put_in_refs(v: &mut Value, values: &BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            if m.len() == 1
                && let Some(Value::String(name)) = m.get("Ref")
                && let Some(value) = values.get(name)
            {
                *v = value.clone();
                return;
            }
            for child in m.values_mut() {
                put_in_refs(child, values);
            }
        }
        Value::Array(items) => {
            for child in items {
                put_in_refs(child, values);
            }
        }
        _ => {}
    }
}

/// The findings of one document's record of Guard's report.
pub(super) fn findings_of(
    rules: &Applicable<'_>,
    record: &Value,
    doc: &Document<'_>,
) -> Vec<Finding> {
    let finding = |rule: String, path: Option<String>, message: String| {
        let located = path.as_deref().and_then(|p| doc.template.span_at(p));
        Finding {
            severity: rules.severity(&rule),
            resource: path.as_deref().and_then(resource_of),
            file: rules
                .file_of(&rule)
                .map(|f| f.path.to_string())
                .unwrap_or_default(),
            rule,
            template: doc.path.to_string(),
            line: located.map(|s| s.start.line),
            column: located.map(|s| s.start.col),
            path,
            message,
            overridden_by: None,
        }
    };
    let mut out = Vec::new();
    for item in record
        .get("not_compliant")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(rule) = item.get("Rule") else {
            continue;
        };
        let name = rule
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        let mut clauses = Vec::new();
        failing_clauses(rule, &mut clauses);
        if clauses.is_empty() {
            out.push(finding(name.clone(), None, "the rule fails".into()));
        }
        // A clause without a message of its own says the rule's (the first one written), and
        // a resource is named once per rule and message.
        let rule_message = clauses
            .iter()
            .find_map(|(_, _, custom)| custom.clone())
            .or_else(|| {
                rules
                    .file_of(&name)
                    .and_then(|f| f.messages.get(&name).cloned())
            });
        let mut said = std::collections::BTreeSet::new();
        for (path, guard_message, custom) in clauses {
            let message = custom
                .or_else(|| rule_message.clone())
                .unwrap_or(guard_message);
            let place = path
                .as_deref()
                .and_then(resource_of)
                .or_else(|| path.clone())
                .unwrap_or_default();
            if said.insert((place, message.clone())) {
                out.push(finding(name.clone(), path, message));
            }
        }
    }
    out
}

/// Every failing clause under a rule of Guard's report: where it looked, Guard's message and
/// the clause's own (`<< … >>`).
fn failing_clauses(v: &Value, out: &mut Vec<(Option<String>, String, Option<String>)>) {
    match v {
        Value::Object(m) => {
            if let Some(clause) = m.get("Clause").and_then(Value::as_object)
                && let Some(inner) = clause.values().next()
            {
                let path = first_path(inner).filter(|p| !p.is_empty());
                let (guard_message, custom) = clause_messages(inner);
                if !out
                    .iter()
                    .any(|(p, g, _)| p == &path && g == &guard_message)
                {
                    out.push((path, guard_message, custom));
                }
                return;
            }
            for child in m.values() {
                failing_clauses(child, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                failing_clauses(child, out);
            }
        }
        _ => {}
    }
}

/// The first document path named in a clause: the value compared, or how far the query got.
fn first_path(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(p)) = m.get("path")
                && !p.is_empty()
            {
                return Some(p.clone());
            }
            m.values().find_map(first_path)
        }
        Value::Array(items) => items.iter().find_map(first_path),
        _ => None,
    }
}

/// Guard's message of a clause, without its `[L:0,C:0]` marks, and the clause's own
/// (`<< … >>`, its lines joined), if it has one.
fn clause_messages(inner: &Value) -> (String, Option<String>) {
    let messages = inner.get("messages");
    let custom = messages
        .and_then(|m| m.get("custom_message"))
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty());
    let guard = messages
        .and_then(|m| m.get("error_message"))
        .and_then(Value::as_str)
        .map(without_positions)
        .unwrap_or_else(|| "the check fails".to_string());
    (guard, custom)
}

/// Guard's message without the `[L:12,C:34]` positions it puts after paths (of its own reading
/// of the document, not of the template).
fn without_positions(s: &str) -> String {
    static AT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| regex::Regex::new(r"\[L:\d+,C:\d+\]").expect("position pattern"));
    at.replace_all(s, "").into_owned()
}

/// The logical id in a path `/Resources/<id>/…`.
fn resource_of(path: &str) -> Option<String> {
    let mut parts = path.split('/').skip(1);
    (parts.next() == Some("Resources"))
        .then(|| parts.next().map(str::to_string))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_take_known_values_and_leave_the_rest() {
        let mut v =
            json!({"A": {"Ref": "Cidr"}, "B": [{"Ref": "Other"}], "C": {"Ref": "Cidr", "x": 1}});
        let values = BTreeMap::from([("Cidr".to_string(), json!("0.0.0.0/0"))]);
        put_in_refs(&mut v, &values);
        assert_eq!(
            v,
            json!({"A": "0.0.0.0/0", "B": [{"Ref": "Other"}], "C": {"Ref": "Cidr", "x": 1}})
        );
    }

    #[test]
    fn the_resource_is_read_from_the_path() {
        assert_eq!(
            resource_of("/Resources/Sg/Properties/X").as_deref(),
            Some("Sg")
        );
        assert_eq!(resource_of("/Formwork/Changes/0"), None);
    }
}
