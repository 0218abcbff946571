//! Planning: what applying a revision of the config would do to each affected stack.
//!
//! [`model`] is the plan itself, as rendered and recorded. [`diff`], [`security`],
//! [`template_diff`] and [`replacement`] read two versions of a template and say what changes,
//! without AWS: they make the offline plan, and fill in what a change set leaves out.

pub mod diff;
pub mod model;
pub mod replacement;
pub mod security;
pub mod template_diff;
