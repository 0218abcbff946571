//! Checking a pipeline on its own ([`check_pipeline`]) and resolving an environment against its
//! pipeline into desired state ([`resolve_environment`]), reporting every problem on the way
//! with the place it was written.
//!
//! [`pipeline`] holds the checks of a pipeline alone and [`environment`] the resolution of an
//! environment: its [`fields`], [`variables`], [`enabled`] stacks and [`overrides`], and a
//! [`unit`](mod@unit) for each stack it deploys, with its [`parameters`], [`stack_name`] and [`tags`],
//! the [`exports`] they import from each other and the SSM parameters they create for each
//! other ([`ssm_written`]), the templates they nest from the repository ([`nested`]: checked
//! and packaged for upload), and outputs taken where their condition is false
//! ([`conditional_outputs`]). Outputs of other environments' stacks are checked once those
//! environments are resolved too ([`remote`]).
//! Underneath: [`values`] parses config values and points into them, [`references`] checks
//! what they refer to, [`scope`] fills them in, and [`cycles`] finds dependency cycles.

mod conditional_outputs;
mod cycles;
mod declared;
mod enabled;
mod environment;
mod exports;
mod fields;
mod hooks;
mod imports;
mod nested;
mod options;
mod overrides;
mod parameters;
mod pipeline;
mod references;
mod remote;
mod requirements;
mod scope;
mod ssm_written;
mod stack_name;
mod tags;
mod unit;
mod values;
mod variables;

pub use environment::resolve_environment;
pub use pipeline::check_pipeline;
pub use remote::link_remote;
pub use requirements::apply_requirements;
