//! Migration into formwork from other tools: a project of another tool converted into
//! `pipelines/` and `environments/`, with a report of everything that has no formwork
//! equivalent, each item at its `file:line:col`.
//!
//! - [`sceptre`]: a Sceptre project (`config/` tree, `templates/`), `formwork import sceptre`.

pub mod sceptre;
