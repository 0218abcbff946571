//! Stack options: given with a change set (service role, notification topics, rollback
//! triggers, what a failed creation leaves), or set by their own calls (termination
//! protection, stack policy), and an update of the options alone.

use aws_sdk_cloudformation::operation::create_change_set::builders::CreateChangeSetFluentBuilder;
use aws_sdk_cloudformation::types::{
    Capability as SdkCapability, OnStackFailure, Parameter, RollbackConfiguration, RollbackTrigger,
};

use super::{Cfn, ChangeSetRequest, SERVICE};
use crate::aws::AwsError;
use crate::template::Capability;

/// The type CloudFormation names alarm rollback triggers by.
const ALARM_TRIGGER: &str = "AWS::CloudWatch::Alarm";

/// Rollback triggers as the API takes them.
fn rollback_configuration(alarms: &[String], minutes: u32) -> RollbackConfiguration {
    let mut b = RollbackConfiguration::builder()
        .monitoring_time_in_minutes(i32::try_from(minutes).unwrap_or(i32::MAX));
    // An empty list (not an absent one) removes the stack's triggers.
    b = b.set_rollback_triggers(Some(
        alarms
            .iter()
            .map(|a| {
                RollbackTrigger::builder()
                    .arn(a)
                    .r#type(ALARM_TRIGGER)
                    .build()
            })
            .collect(),
    ));
    b.build()
}

/// The request's options added to a CreateChangeSet call.
pub(super) fn with_options(
    mut req: CreateChangeSetFluentBuilder,
    r: &ChangeSetRequest,
) -> CreateChangeSetFluentBuilder {
    if let Some(role) = &r.role_arn {
        req = req.role_arn(role);
    }
    if let Some(topics) = &r.notification_arns {
        req = req.set_notification_arns(Some(topics.clone()));
    }
    if let Some((alarms, minutes)) = &r.rollback {
        req = req.rollback_configuration(rollback_configuration(alarms, *minutes));
    }
    if let (Some(f), true) = (r.on_failure, r.create && r.imports.is_empty()) {
        req = req.on_stack_failure(OnStackFailure::from(f));
    }
    req
}

/// An update of a stack's options alone: its template and parameter values kept.
#[derive(Clone, Debug, Default)]
pub struct OptionsUpdate {
    pub stack_name: String,
    /// The names of the stack's parameters (each keeps its value).
    pub parameters: Vec<String>,
    pub capabilities: Vec<Capability>,
    pub role_arn: Option<String>,
    pub notification_arns: Option<Vec<String>>,
    pub rollback: Option<(Vec<String>, u32)>,
}

impl Cfn {
    /// Turns termination protection of the stack on or off.
    pub async fn update_termination_protection(
        &self,
        stack: &str,
        enabled: bool,
    ) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .update_termination_protection()
            .stack_name(stack)
            .enable_termination_protection(enabled)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "UpdateTerminationProtection", e))?;
        Ok(())
    }

    /// The stack's policy as CloudFormation keeps it; `None` when it has none.
    pub async fn get_stack_policy(&self, stack: &str) -> Result<Option<String>, AwsError> {
        let _permit = self.limit.acquire().await;
        let out = self
            .client
            .get_stack_policy()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "GetStackPolicy", e))?;
        Ok(out
            .stack_policy_body()
            .filter(|b| !b.trim().is_empty())
            .map(str::to_string))
    }

    /// Sets the stack's policy.
    pub async fn set_stack_policy(&self, stack: &str, body: &str) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .set_stack_policy()
            .stack_name(stack)
            .stack_policy_body(body)
            .send()
            .await
            .map_err(|e| AwsError::call(SERVICE, "SetStackPolicy", e))?;
        Ok(())
    }

    /// Starts an update of the stack's options alone (UpdateStack with its template and
    /// parameter values kept); `Ok(false)` when CloudFormation finds nothing to update.
    pub async fn update_stack_options(
        &self,
        u: &OptionsUpdate,
        token: &str,
    ) -> Result<bool, AwsError> {
        let _permit = self.limit.acquire().await;
        let mut req = self
            .client
            .update_stack()
            .stack_name(&u.stack_name)
            .use_previous_template(true)
            .client_request_token(token);
        for p in &u.parameters {
            req = req.parameters(
                Parameter::builder()
                    .parameter_key(p)
                    .use_previous_value(true)
                    .build(),
            );
        }
        for c in &u.capabilities {
            req = req.capabilities(SdkCapability::from(c.as_str()));
        }
        if let Some(role) = &u.role_arn {
            req = req.role_arn(role);
        }
        if let Some(topics) = &u.notification_arns {
            req = req.set_notification_arns(Some(topics.clone()));
        }
        if let Some((alarms, minutes)) = &u.rollback {
            req = req.rollback_configuration(rollback_configuration(alarms, *minutes));
        }
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = AwsError::call(SERVICE, "UpdateStack", e);
                if e.code_and_message()
                    .is_some_and(|(_, m)| m.contains("No updates are to be performed"))
                {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }
}
