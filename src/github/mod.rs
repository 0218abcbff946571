//! GitHub: what formwork says on pull requests and commits, and what it hears from GitHub.
//!
//! - [`commands`]: `/formwork …` comment commands, parsed;
//! - [`webhook`]: webhook deliveries, their signatures verified and their events read;
//! - [`client`]: the REST endpoints formwork calls, with rate limits and retries;
//! - [`sticky`]: the comments formwork keeps on a pull request, edited in place;
//! - [`report`]: plans and applies as comments, statuses and check runs;
//! - [`requirements`]: what a pull request must meet before it is applied (reviews, mergeable,
//!   up to date);
//! - [`drift_issue`]: one issue per environment about its drift, opened, updated and closed;
//! - [`overrides`]: policy overrides by comment, recorded and marked on the plan;
//! - [`flow`]: planning a pull request and applying a merge, end to end.

pub mod client;
pub mod commands;
pub mod drift_issue;
pub mod flow;
pub mod overrides;
pub mod report;
pub mod requirements;
pub mod sticky;
pub mod webhook;
