//! Planning: what applying a revision of the config would do to each affected stack.
//!
//! [`model`] is the plan itself, as rendered and recorded in the state store. [`live`] plans against
//! AWS with change sets, filling in inputs with [`inputs`] and keeping secrets out of every
//! output with [`secrets`]; [`offline`] plans from two revisions of the config alone. [`diff`], [`security`],
//! [`template_diff`] and [`replacement`] read two versions of a template and say what changes,
//! without AWS: they make the offline plan, and fill in what a change set leaves out.

pub mod diff;
pub mod inputs;
pub mod live;
pub mod model;
pub mod offline;
pub mod replacement;
pub mod secrets;
pub mod security;
pub mod template_diff;
