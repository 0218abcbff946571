//! GitHub: what formwork says on pull requests and commits, and what it hears from GitHub.
//!
//! - [`commands`]: `/formwork …` comment commands, parsed;
//! - [`webhook`]: webhook deliveries, their signatures verified and their events read;
//! - [`client`]: the REST endpoints formwork calls, with rate limits and retries.

pub mod client;
pub mod commands;
pub mod report;
pub mod sticky;
pub mod webhook;
