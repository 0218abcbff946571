//! Planning: what applying a revision of the config would do to each affected stack.
//!
//! [`model`] is the plan itself, as rendered and recorded in the state store. [`live`] plans
//! against AWS with change sets, filling in inputs with [`inputs`]; [`offline`] plans from two
//! revisions of the config alone. What two versions of a template differ in (resources,
//! security, text, replacement) is asked of [`crate::template`]; secrets are kept out of every
//! output by [`crate::secrets`].

pub mod inputs;
pub mod live;
pub mod model;
pub mod offline;
