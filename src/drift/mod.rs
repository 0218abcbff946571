//! Drift detection: whether the deployed stacks of an environment still match what
//! CloudFormation deployed, or someone changed or deleted their resources by hand.
//!
//! [`detect`] asks CloudFormation to detect each deployed stack's drift (a bounded number at a
//! time per account and region, polling with backoff until a deadline), and reads the modified
//! and deleted resources of the drifted ones; [`model`] is the report it gives, rendered by
//! [`crate::render::drift`]; [`mask`] keeps secrets out of it (values of NoEcho parameters,
//! SecureStrings, secure dynamic references), on top of the [`crate::secrets`] masker every
//! rendered output passes. It reads the config only to know the stacks; what a stack is
//! compared with is CloudFormation's own record of its template and parameters. It changes
//! nothing.

pub mod detect;
pub mod mask;
pub mod model;

pub use detect::{DriftError, DriftOptions, detect};
pub use model::{DriftReport, DriftState};
