//! Policy as code: rules written in CloudFormation Guard, kept in the config repository
//! (`policies/*.guard`, severities in `policies/policies.yml`, each environment's choice in its
//! `environment.yml`), evaluated in process with the `cfn-guard` library on every stack a plan
//! creates or updates. A failing rule of severity `block` fails the plan's check and apply
//! refuses the plan; `warn` rules are shown.
//!
//! [`rules`] reads the rules of a revision; [`evaluate`] runs them on one stack (its template
//! with the environment's values, what formwork knows of it under `Formwork`); [`check`] puts
//! the findings on a plan; [`cache`] remembers Guard's results by the SHA-256 of the rules and
//! the document, so that an unchanged stack planned again is not evaluated again (and Guard's
//! verdict on each rule file, so that unchanged rules are not parsed again);
//! [`tests_run`] runs the rules' own unit tests.

pub mod cache;
pub mod check;
pub mod evaluate;
pub mod rules;
pub mod tests_run;

pub use cache::{Keep, Results};
pub use check::{Gate, Prepared, check_plan, prepare};
pub use rules::{Loaded, POLICIES_DIR, PolicySet, load, validate, validate_loaded, verdict_keys};
