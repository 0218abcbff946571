//! The vocabulary of changes to a stack's resources, as CloudFormation's change sets speak of
//! them and as formwork works them out from two versions of a template: what happens to a
//! resource, whether it is replaced, what changes in it, and which IAM and network items appear
//! or go away. Plans (`crate::plan::model`) are made of these.

use serde::{Deserialize, Serialize};

/// What happens to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceAction {
    Add,
    Modify,
    Remove,
    Import,
    /// Decided only while the change set runs (CloudFormation's `Dynamic`).
    Dynamic,
}

/// Whether a modified resource is replaced (a new physical resource, the old one deleted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replacement {
    True,
    False,
    /// Depends on values only known while the change set runs.
    Conditional,
    /// Not applicable (adds, removes) or not known.
    Unknown,
}

/// Who said whether a resource is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplacementSource {
    /// CloudFormation's change set.
    Cloudformation,
    /// formwork's prediction from the resource type's create-only properties.
    Predicted,
}

/// A changed resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub logical_id: String,
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub action: ResourceAction,
    pub replacement: Replacement,
    pub replacement_source: ReplacementSource,
    /// What parts change: `Properties`, `Metadata`, `Tags`, `CreationPolicy`, `UpdatePolicy`,
    /// `DeletionPolicy`, `UpdateReplacePolicy`.
    pub scope: Vec<String>,
    pub details: Vec<ChangeDetail>,
    /// The resource's `Condition` when whether it holds is not known before deploying (the
    /// change happens only if it does); `None` when the resource has none or it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// One changed attribute or property of a resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeDetail {
    /// `Properties`, `Metadata`, `Tags`, … (CloudFormation's `Target.Attribute`).
    pub attribute: String,
    /// The property path, e.g. `CidrBlock` or `Tags[0].Value`.
    pub name: Option<String>,
    /// `never`, `conditionally` or `always`.
    pub requires_recreation: Option<RequiresRecreation>,
    /// `Static` or `Dynamic`.
    pub evaluation: Option<String>,
    /// `ResourceReference`, `ParameterReference`, `ResourceAttribute`, `DirectModification`,
    /// `Automatic`.
    pub change_source: Option<String>,
    /// The resource, parameter or attribute that causes the change.
    pub causing_entity: Option<String>,
    /// The value before, where known (masked when secret).
    pub before: Option<String>,
    /// The value after, where known (masked when secret).
    pub after: Option<String>,
}

/// Whether changing a property replaces the resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequiresRecreation {
    Never,
    Conditionally,
    Always,
}

/// What kind of access a security change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityKind {
    /// A statement of an IAM policy (identity policy, trust policy).
    IamStatement,
    /// A managed policy attached or detached.
    IamPolicy,
    /// A statement of a resource policy (bucket, queue, topic, key policy …).
    ResourcePolicy,
    /// An ingress or egress rule of a security group.
    SecurityGroupRule,
}

/// Whether a security item appears or goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityChangeKind {
    Added,
    Removed,
}

/// An IAM or network change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityChange {
    /// The resource's logical id.
    pub resource: String,
    pub resource_type: String,
    pub kind: SecurityKind,
    pub change: SecurityChangeKind,
    /// What the item says, in one line: `Allow s3:GetObject on arn:aws:s3:::bucket/*`,
    /// `ingress tcp 443 from 0.0.0.0/0`.
    pub description: String,
    /// The change widens access: a new Allow with a wildcard action, resource or principal, a
    /// rule open to the whole internet, a removed Deny.
    pub broadens: bool,
}
