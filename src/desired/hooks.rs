//! A stack's hooks as the config asks for them: commands apply runs before and after it
//! creates or updates the stack, with `${var.…}` and `${env.…}` filled in.

use serde::Serialize;

use crate::diag::Loc;

/// The hooks of one unit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hooks {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before_apply: Vec<Hook>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after_apply: Vec<Hook>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.before_apply.is_empty() && self.after_apply.is_empty()
    }
}

/// One command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hook {
    /// The command line, run with `sh -c`.
    pub run: String,
    pub timeout_seconds: u64,
    /// Where it was written.
    #[serde(skip)]
    pub loc: Loc,
}

/// When a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    BeforeApply,
    AfterApply,
}

impl Phase {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BeforeApply => "before_apply",
            Phase::AfterApply => "after_apply",
        }
    }
}

impl Hooks {
    /// The hooks of `phase`.
    pub fn of(&self, phase: Phase) -> &[Hook] {
        match phase {
            Phase::BeforeApply => &self.before_apply,
            Phase::AfterApply => &self.after_apply,
        }
    }
}
