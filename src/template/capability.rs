//! CloudFormation's capabilities: what a stack operation must acknowledge for templates that
//! create IAM resources or expand macros.

use schemars::JsonSchema;
use serde::Deserialize;

/// A CloudFormation capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
pub enum Capability {
    #[serde(rename = "CAPABILITY_IAM")]
    Iam,
    #[serde(rename = "CAPABILITY_NAMED_IAM")]
    NamedIam,
    #[serde(rename = "CAPABILITY_AUTO_EXPAND")]
    AutoExpand,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Iam => "CAPABILITY_IAM",
            Capability::NamedIam => "CAPABILITY_NAMED_IAM",
            Capability::AutoExpand => "CAPABILITY_AUTO_EXPAND",
        }
    }

    /// Whether acknowledging `self` satisfies a template that needs `needed`
    /// (`CAPABILITY_NAMED_IAM` covers `CAPABILITY_IAM`).
    pub fn covers(self, needed: Capability) -> bool {
        self == needed || (self == Capability::NamedIam && needed == Capability::Iam)
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
