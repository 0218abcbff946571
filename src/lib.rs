//! formwork: a GitOps runner for AWS CloudFormation.
//!
//! A config repository holds `pipelines/` (systems made of CloudFormation stacks and how they
//! feed each other) and `environments/` (where each system is deployed and with which values).
//! formwork reads two revisions of it straight from git, works out which stacks of which
//! environments a change affects, and deploys them in dependency order.
//!
//! The modules, from the bottom up (docs/architecture.md draws the whole):
//! - [`diag`]: positions, diagnostics and their rendering;
//! - [`yaml`]: YAML documents with positions and tags, and a serde deserializer over them;
//! - [`source`] and [`git`]: reading a revision or a directory;
//! - [`template`]: the CloudFormation template model;
//! - [`config`]: the config repository's files, expressions, loading and checking;
//! - [`desired`]: the desired state of each stack of each environment;
//! - [`graph`]: dependency order and cycles;
//! - [`affected`]: what a change between two revisions affects;
//! - [`workflow`]: the config-repository handle plan and apply work from;
//! - [`aws`]: AWS sessions and calls;
//! - [`secrets`]: keeping secrets out of every output;
//! - [`plan`]: planning, offline and with change sets;
//! - [`drift`]: whether deployed stacks still match what CloudFormation deployed;
//! - [`store`] and [`lease`]: what is remembered between runs, and time-limited holds;
//! - [`migrate`]: converting a project of another tool (Sceptre) into a config repository;
//! - [`notify`]: notifications of applies and drift (Slack, signed webhooks, SNS);
//! - [`apply`]: executing reviewed plans, and applying as a service with a reporter;
//! - [`render`]: text, Markdown and JSON output;
//! - [`github`]: the GitHub client, webhooks, comment commands and reports;
//! - [`runner`]: what a GitHub event means, and doing it, for every door;
//! - [`serve`]: the self-hosted agent;
//! - [`schema`]: JSON Schemas of the config files; [`suggest`]: "did you mean".

pub mod affected;
pub mod apply;
pub mod aws;
pub mod config;
pub mod desired;
pub mod diag;
pub mod drift;
pub mod git;
pub mod github;
pub mod graph;
pub mod iam;
pub mod lease;
pub mod migrate;
pub mod notify;
pub mod plan;
pub mod policy;
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
