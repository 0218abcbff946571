//! CloudFormation calls: stacks, templates, change sets, drift detection. Results come back as
//! plain data, the way CloudFormation states them; the planner (and `drift`) decide what they
//! mean.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::{
    Capability as SdkCapability, ChangeSetStatus, ChangeSetType, Parameter, ResourceToImport, Tag,
    TemplateStage,
};
use aws_smithy_types::date_time::Format;

use super::{AwsError, Limit};

mod drift;
mod settings;
use crate::template::Capability;
pub use drift::{DriftDetectionStatus, PropertyDifferenceInfo, ResourceDriftInfo};
pub use settings::OptionsUpdate;

const SERVICE: &str = "CloudFormation";

/// A stack as CloudFormation describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackInfo {
    pub stack_id: String,
    pub name: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// Parameter values as CloudFormation returns them (NoEcho ones as `****`).
    pub parameters: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// When the stack last changed: its last update, else its creation (RFC 3339).
    pub last_updated: Option<String>,
    /// The options CloudFormation keeps on the stack beside its template.
    pub settings: StackSettings,
}

/// The options of a stack that DescribeStacks states (its stack policy needs GetStackPolicy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct StackSettings {
    pub termination_protection: bool,
    /// The role CloudFormation assumes for the stack (`RoleARN`).
    pub role_arn: Option<String>,
    pub notification_arns: Vec<String>,
    /// The ARNs of the rollback triggers' alarms.
    pub rollback_alarms: Vec<String>,
    pub rollback_monitoring_minutes: u32,
}

/// Where the template of a change set comes from.
#[derive(Clone, Debug)]
pub enum TemplateSource {
    Body(String),
    Url(String),
}

/// What to create a change set with.
#[derive(Clone, Debug)]
pub struct ChangeSetRequest {
    pub stack_name: String,
    pub change_set_name: String,
    /// `true` for a new stack (CREATE), `false` for an existing one (UPDATE).
    pub create: bool,
    pub template: TemplateSource,
    pub parameters: Vec<(String, String)>,
    pub capabilities: Vec<Capability>,
    pub tags: Vec<(String, String)>,
    pub description: String,
    /// Create change sets for the template's nested stacks too (`IncludeNestedStacks`).
    pub include_nested: bool,
    /// The role CloudFormation assumes (`RoleARN`); `None` keeps the stack's.
    pub role_arn: Option<String>,
    /// SNS topics; `None` keeps the stack's, empty removes them.
    pub notification_arns: Option<Vec<String>>,
    /// Rollback trigger alarms and monitoring minutes; `None` keeps the stack's.
    pub rollback: Option<(Vec<String>, u32)>,
    /// `OnStackFailure` of a creation: `ROLLBACK`, `DELETE` or `DO_NOTHING`.
    pub on_failure: Option<&'static str>,
    /// Existing resources to import (an IMPORT change set when not empty).
    pub imports: Vec<ResourceImport>,
}

/// An existing resource a change set imports into the stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceImport {
    pub logical_id: String,
    pub resource_type: String,
    /// The properties identifying it, and their values.
    pub identifier: BTreeMap<String, String>,
}

/// A change set as CloudFormation describes it (all pages put together).
#[derive(Clone, Debug, Default)]
pub struct ChangeSetInfo {
    pub id: String,
    pub name: String,
    pub stack_id: Option<String>,
    /// `CREATE_PENDING`, `CREATE_IN_PROGRESS`, `CREATE_COMPLETE`, `DELETE_*`, `FAILED`.
    pub status: String,
    pub status_reason: Option<String>,
    /// `AVAILABLE`, `UNAVAILABLE`, `EXECUTE_*`, `OBSOLETE`.
    pub execution_status: Option<String>,
    pub description: Option<String>,
    /// The parameter values it was created with (NoEcho ones as `****`).
    pub parameters: BTreeMap<String, String>,
    /// When it was created (RFC 3339).
    pub creation_time: Option<String>,
    pub changes: Vec<ResourceChangeInfo>,
}

impl ChangeSetInfo {
    /// Whether CloudFormation refused the change set because nothing would change.
    pub fn is_empty_failure(&self) -> bool {
        self.status == "FAILED"
            && self.status_reason.as_deref().is_some_and(|r| {
                r.contains("didn't contain changes") || r.contains("No updates are to be performed")
            })
    }
}

/// One resource change of a change set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceChangeInfo {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    /// `True`, `False`, `Conditional`; absent where the endpoint does not say.
    pub replacement: Option<String>,
    pub scope: Vec<String>,
    pub details: Vec<DetailInfo>,
    /// The resource's properties before and after, as JSON (with IncludePropertyValues).
    pub before_context: Option<String>,
    pub after_context: Option<String>,
    /// For a nested stack, the change set created for it (with `IncludeNestedStacks`).
    pub nested_change_set: Option<String>,
}

/// One detail of a resource change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetailInfo {
    pub attribute: Option<String>,
    pub name: Option<String>,
    /// `Never`, `Conditionally`, `Always`.
    pub requires_recreation: Option<String>,
    pub evaluation: Option<String>,
    pub change_source: Option<String>,
    pub causing_entity: Option<String>,
    pub before_value: Option<String>,
    pub after_value: Option<String>,
}

/// One event of a stack, as CloudFormation records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackEvent {
    pub event_id: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `CREATE_IN_PROGRESS`, `UPDATE_FAILED`, …
    pub status: String,
    pub reason: Option<String>,
    /// RFC 3339.
    pub timestamp: String,
    pub client_request_token: Option<String>,
}

/// A change set of a stack, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetSummary {
    pub id: String,
    pub name: String,
    pub stack_id: Option<String>,
    pub stack_name: Option<String>,
    pub status: Option<String>,
    pub execution_status: Option<String>,
    pub description: Option<String>,
}

/// CloudFormation for one session.
#[derive(Clone, Debug)]
pub struct Cfn {
    client: Client,
    limit: Limit,
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

/// Whether an error says the stack does not exist.
fn is_missing_stack(e: &AwsError) -> bool {
    e.code_and_message()
        .is_some_and(|(_, m)| m.contains("does not exist"))
}

/// A stack as DescribeStacks gives it; `None` for a deleted one.
fn stack_info(s: &aws_sdk_cloudformation::types::Stack) -> Option<StackInfo> {
    let status = s
        .stack_status()
        .map(|x| x.as_str().to_string())
        .unwrap_or_default();
    if status == "DELETE_COMPLETE" {
        return None;
    }
    let pairs = |items: Vec<(Option<&str>, Option<&str>)>| -> BTreeMap<String, String> {
        items
            .into_iter()
            .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
            .collect()
    };
    Some(StackInfo {
        stack_id: s.stack_id().unwrap_or_default().to_string(),
        name: s.stack_name().unwrap_or_default().to_string(),
        status,
        status_reason: s.stack_status_reason().map(str::to_string),
        outputs: pairs(
            s.outputs()
                .iter()
                .map(|o| (o.output_key(), o.output_value()))
                .collect(),
        ),
        parameters: pairs(
            s.parameters()
                .iter()
                .map(|p| (p.parameter_key(), p.parameter_value()))
                .collect(),
        ),
        tags: s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        last_updated: time(s.last_updated_time()).or_else(|| time(s.creation_time())),
        settings: StackSettings {
            termination_protection: s.enable_termination_protection().unwrap_or(false),
            role_arn: s.role_arn().filter(|r| !r.is_empty()).map(str::to_string),
            notification_arns: {
                let mut v = s.notification_arns().to_vec();
                v.sort();
                v
            },
            rollback_alarms: s
                .rollback_configuration()
                .map(|r| {
                    let mut v: Vec<String> = r
                        .rollback_triggers()
                        .iter()
                        .filter_map(|t| t.arn().map(str::to_string))
                        .collect();
                    v.sort();
                    v
                })
                .unwrap_or_default(),
            rollback_monitoring_minutes: s
                .rollback_configuration()
                .and_then(|r| r.monitoring_time_in_minutes())
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(0),
        },
    })
}

impl Cfn {
    pub fn new(client: Client, limit: Limit) -> Cfn {
        Cfn { client, limit }
    }

    /// The stack named `name`, or `None` when there is none (deleted stacks count as none).
    pub async fn describe_stack(&self, name: &str) -> Result<Option<StackInfo>, AwsError> {
        let _permit = self.limit.acquire().await;
        let out = match self.client.describe_stacks().stack_name(name).send().await {
            Ok(o) => o,
            Err(e) => {
                let e = AwsError::call(SERVICE, "DescribeStacks", e);
                return if is_missing_stack(&e) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        };
        Ok(out.stacks().first().and_then(stack_info))
    }

    /// Every stack of the account and region (deleted ones left out), with one paginated
    /// DescribeStacks: what a plan of many stacks reads instead of describing each.
    pub async fn list_stacks(&self) -> Result<Vec<StackInfo>, AwsError> {
        let mut stacks = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let _permit = self.limit.acquire().await;
            let out = self
                .client
                .describe_stacks()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::call(SERVICE, "DescribeStacks", e))?;
            stacks.extend(out.stacks().iter().filter_map(stack_info));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(stacks),
            }
        }
    }

    /// The template the stack was last deployed with, as submitted (`Original` stage).
    pub async fn get_template(&self, stack: &str) -> Result<Option<String>, AwsError> {
        let _permit = self.limit.acquire().await;
        match self
            .client
            .get_template()
            .stack_name(stack)
            .template_stage(TemplateStage::Original)
            .send()
            .await
        {
            Ok(o) => Ok(o.template_body().map(str::to_string)),
            Err(e) => {
                let e = AwsError::call(SERVICE, "GetTemplate", e);
                if is_missing_stack(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Starts creating a change set; returns its ARN and the stack's.
    pub async fn create_change_set(
        &self,
        r: &ChangeSetRequest,
    ) -> Result<(String, Option<String>), AwsError> {
        let _permit = self.limit.acquire().await;
        let mut req = self
            .client
            .create_change_set()
            .stack_name(&r.stack_name)
            .change_set_name(&r.change_set_name)
            .change_set_type(if !r.imports.is_empty() {
                ChangeSetType::Import
            } else if r.create {
                ChangeSetType::Create
            } else {
                ChangeSetType::Update
            })
            .description(&r.description);
        if r.include_nested {
            req = req.include_nested_stacks(true);
        }
        req = match &r.template {
            TemplateSource::Body(b) => req.template_body(b),
            TemplateSource::Url(u) => req.template_url(u),
        };
        for (k, v) in &r.parameters {
            req = req.parameters(
                Parameter::builder()
                    .parameter_key(k)
                    .parameter_value(v)
                    .build(),
            );
        }
        for c in &r.capabilities {
            req = req.capabilities(SdkCapability::from(c.as_str()));
        }
        for (k, v) in &r.tags {
            req = req.tags(Tag::builder().key(k).value(v).build());
        }
        req = settings::with_options(req, r);
        for i in &r.imports {
            req = req.resources_to_import(
                ResourceToImport::builder()
                    .logical_resource_id(&i.logical_id)
                    .resource_type(&i.resource_type)
                    .set_resource_identifier(Some(
                        i.identifier
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ))
                    .build(),
            );
        }
        let out = req
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "CreateChangeSet", e))?;
        Ok((
            out.id().unwrap_or_default().to_string(),
            out.stack_id().map(str::to_string),
        ))
    }

    /// Describes a change set, every page of its changes, with property values where the API
    /// offers them.
    pub async fn describe_change_set(&self, id: &str) -> Result<ChangeSetInfo, AwsError> {
        self.describe(id, None).await
    }

    async fn describe(&self, id: &str, stack: Option<&str>) -> Result<ChangeSetInfo, AwsError> {
        let mut info = ChangeSetInfo::default();
        let mut token: Option<String> = None;
        loop {
            let _permit = self.limit.acquire().await;
            let out = self
                .client
                .describe_change_set()
                .change_set_name(id)
                .set_stack_name(stack.map(str::to_string))
                .include_property_values(true)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::call(SERVICE, "DescribeChangeSet", e))?;
            info.id = out.change_set_id().unwrap_or(id).to_string();
            info.name = out.change_set_name().unwrap_or_default().to_string();
            info.stack_id = out.stack_id().map(str::to_string);
            info.status = out
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            info.status_reason = out.status_reason().map(str::to_string);
            info.execution_status = out.execution_status().map(|s| s.as_str().to_string());
            info.description = out.description().map(str::to_string);
            info.creation_time = time(out.creation_time());
            info.parameters = out
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_string(),
                        p.parameter_value().unwrap_or_default().to_string(),
                    ))
                })
                .collect();
            for change in out.changes() {
                let Some(rc) = change.resource_change() else {
                    continue;
                };
                info.changes.push(ResourceChangeInfo {
                    action: rc
                        .action()
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_default(),
                    logical_id: rc.logical_resource_id().unwrap_or_default().to_string(),
                    physical_id: rc.physical_resource_id().map(str::to_string),
                    resource_type: rc.resource_type().unwrap_or_default().to_string(),
                    replacement: rc.replacement().map(|r| r.as_str().to_string()),
                    scope: rc.scope().iter().map(|s| s.as_str().to_string()).collect(),
                    details: rc
                        .details()
                        .iter()
                        .map(|d| DetailInfo {
                            attribute: d
                                .target()
                                .and_then(|t| t.attribute())
                                .map(|a| a.as_str().to_string()),
                            name: d.target().and_then(|t| t.name()).map(str::to_string),
                            requires_recreation: d
                                .target()
                                .and_then(|t| t.requires_recreation())
                                .map(|r| r.as_str().to_string()),
                            evaluation: d.evaluation().map(|e| e.as_str().to_string()),
                            change_source: d.change_source().map(|c| c.as_str().to_string()),
                            causing_entity: d.causing_entity().map(str::to_string),
                            before_value: d
                                .target()
                                .and_then(|t| t.before_value())
                                .map(str::to_string),
                            after_value: d
                                .target()
                                .and_then(|t| t.after_value())
                                .map(str::to_string),
                        })
                        .collect(),
                    before_context: rc.before_context().map(str::to_string),
                    after_context: rc.after_context().map(str::to_string),
                    nested_change_set: rc
                        .change_set_id()
                        .filter(|id| !id.is_empty())
                        .map(str::to_string),
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(info),
            }
        }
    }

    /// Executes a change set. The token makes a retry of the same request harmless, and marks
    /// the stack events of the operation.
    pub async fn execute_change_set(&self, id: &str, token: &str) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .execute_change_set()
            .change_set_name(id)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "ExecuteChangeSet", e))?;
        Ok(())
    }

    /// Starts deleting a stack, with a token as for [`Cfn::execute_change_set`].
    pub async fn delete_stack(&self, name: &str, token: &str) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .delete_stack()
            .stack_name(name)
            .client_request_token(token)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "DeleteStack", e))?;
        Ok(())
    }

    /// The events of a stack newer than event `after` (all when `None`), oldest first. Pages are
    /// read newest first until `after` is reached.
    pub async fn stack_events(
        &self,
        stack: &str,
        after: Option<&str>,
    ) -> Result<Vec<StackEvent>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        'pages: loop {
            let _permit = self.limit.acquire().await;
            let page = self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::call(SERVICE, "DescribeStackEvents", e))?;
            for e in page.stack_events() {
                let id = e.event_id().unwrap_or_default();
                if Some(id) == after {
                    break 'pages;
                }
                out.push(StackEvent {
                    event_id: id.to_string(),
                    logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                    resource_type: e.resource_type().unwrap_or_default().to_string(),
                    status: e
                        .resource_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    reason: e.resource_status_reason().map(str::to_string),
                    timestamp: time(e.timestamp()).unwrap_or_default(),
                    client_request_token: e.client_request_token().map(str::to_string),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() && after.is_some() => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.reverse();
        Ok(out)
    }

    /// The id of the stack's newest event (`None` for a stack without events).
    pub async fn newest_event_id(&self, stack: &str) -> Result<Option<String>, AwsError> {
        // Without `after`, one page is read: the newest events.
        Ok(self
            .stack_events(stack, None)
            .await?
            .pop()
            .map(|e| e.event_id)
            .filter(|id| !id.is_empty()))
    }

    /// Describes the change set `name` of stack `stack`.
    pub async fn describe_change_set_named(
        &self,
        stack: &str,
        name: &str,
    ) -> Result<ChangeSetInfo, AwsError> {
        self.describe(name, Some(stack)).await
    }

    /// Waits until a change set is created (or has failed), polling with a growing interval.
    pub async fn wait_change_set(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<ChangeSetInfo, AwsError> {
        let start = Instant::now();
        let mut interval = Duration::from_millis(250);
        loop {
            let info = self.describe_change_set(id).await?;
            let pending = matches!(
                ChangeSetStatus::from(info.status.as_str()),
                ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress
            );
            if !pending {
                return self.with_nested(info).await;
            }
            if start.elapsed() >= timeout {
                return Err(AwsError::Timeout {
                    what: format!("change set {id}"),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(5));
        }
    }

    /// `info` with the changes of its nested stacks' change sets added after them, their
    /// logical ids under the nested stack's (`App/Queue`), to any depth CloudFormation
    /// nests them.
    async fn with_nested(&self, mut info: ChangeSetInfo) -> Result<ChangeSetInfo, AwsError> {
        const MAX_NESTED: usize = 500;
        let mut todo: Vec<(String, String)> = info
            .changes
            .iter()
            .filter_map(|c| Some((format!("{}/", c.logical_id), c.nested_change_set.clone()?)))
            .collect();
        let mut seen = 0;
        while let Some((prefix, id)) = todo.pop() {
            seen += 1;
            if seen > MAX_NESTED {
                break;
            }
            let nested = self.describe_change_set(&id).await?;
            for mut c in nested.changes {
                c.logical_id = format!("{prefix}{}", c.logical_id);
                if let Some(id) = &c.nested_change_set {
                    todo.push((format!("{}/", c.logical_id), id.clone()));
                }
                info.changes.push(c);
            }
        }
        Ok(info)
    }

    /// Deletes a change set and waits until it is gone, so that its name can be used again.
    pub async fn delete_change_set_and_wait(&self, id: &str) -> Result<(), AwsError> {
        self.delete_change_set(id).await?;
        let start = Instant::now();
        let mut interval = Duration::from_millis(250);
        loop {
            match self.describe_change_set(id).await {
                Err(e)
                    if e.code_and_message().is_some_and(|(code, msg)| {
                        code == Some("ChangeSetNotFound") || msg.contains("does not exist")
                    }) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e),
                Ok(info) if info.status == "DELETE_COMPLETE" => return Ok(()),
                Ok(_) => {}
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(AwsError::Timeout {
                    what: format!("deletion of change set {id}"),
                    seconds: 60,
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(5));
        }
    }

    pub async fn delete_change_set(&self, id: &str) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .delete_change_set()
            .change_set_name(id)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "DeleteChangeSet", e))?;
        Ok(())
    }

    /// The change sets of a stack (every page). Only those of this stack are returned, even
    /// where an endpoint lists more.
    pub async fn list_change_sets(
        &self,
        stack: &StackInfo,
    ) -> Result<Vec<ChangeSetSummary>, AwsError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let _permit = self.limit.acquire().await;
            let page = self
                .client
                .list_change_sets()
                .stack_name(&stack.stack_id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| AwsError::call(SERVICE, "ListChangeSets", e))?;
            for s in page.summaries() {
                // By id, or by name: a stack's name is unique in its region while it exists.
                let ours = s.stack_id() == Some(stack.stack_id.as_str())
                    || s.stack_name() == Some(stack.name.as_str());
                if !ours {
                    continue;
                }
                out.push(ChangeSetSummary {
                    id: s.change_set_id().unwrap_or_default().to_string(),
                    name: s.change_set_name().unwrap_or_default().to_string(),
                    stack_id: s.stack_id().map(str::to_string),
                    stack_name: s.stack_name().map(str::to_string),
                    status: s.status().map(|x| x.as_str().to_string()),
                    execution_status: s.execution_status().map(|x| x.as_str().to_string()),
                    description: s.description().map(str::to_string),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }
}
