//! formwork: a GitOps runner for AWS CloudFormation.
//!
//! A config repository holds `pipelines/` (systems made of CloudFormation stacks and how they
//! feed each other) and `environments/` (where each system is deployed and with which values).
//! formwork reads two revisions of it straight from git, works out which stacks of which
//! environments a change affects, and deploys them in dependency order.
//!
//! The modules, from the bottom up:
//! - [`diag`]: positions, diagnostics and their rendering;
//! - [`yaml`]: YAML documents with positions and tags, and a serde deserializer over them;
//! - [`template`]: the CloudFormation template model;
//! - [`config`]: the config repository's files, expressions, loading and checking;
//! - [`desired`]: the desired state of each stack of each environment;
//! - [`graph`]: dependency order and cycles;
//! - [`source`] and [`git`]: reading a revision or a directory;
//! - [`affected`]: what a change between two revisions affects;
//! - [`render`]: text and JSON output;
//! - [`schema`]: JSON Schemas of the config files.

pub mod affected;
pub mod apply;
pub mod aws;
pub mod config;
pub mod desired;
pub mod diag;
pub mod git;
pub mod github;
pub mod graph;
pub mod lease;
pub mod plan;
pub mod render;
pub mod runner;
pub mod schema;
pub mod secrets;
pub mod serve;
pub mod source;
pub mod store;
pub mod suggest;
pub mod template;
pub mod workflow;
pub mod yaml;
