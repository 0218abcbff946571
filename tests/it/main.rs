//! The integration tests, in one test binary (one link of the library and its dependencies
//! instead of one per file): each module tests one capability end to end, through the formwork
//! binary or the library, against real git repositories and the local endpoints in [`common`].
//! Tests share those endpoints and run in parallel, so each names what it creates uniquely.
//! Run one module with `cargo test --test it <module>::`.

mod common;

mod action;
mod affected;
mod apply_localstack;
mod apply_records;
mod apply_requirements;
mod conditions;
mod corpus;
mod cross_environment;
mod drift;
mod dynamic_references;
mod emulators;

mod first_run;
mod github_client;
mod github_commands;
mod github_pr;
mod github_webhooks;
mod graph;
mod hooks;
mod hostile_input;
mod import_sceptre;
mod imports;
mod nested;
mod never_panics;
mod notify;
mod pipeline_api_gateway_microservices;
mod pipeline_dekart;
mod pipeline_ecs_services;
mod pipeline_features;
mod pipeline_the_things_stack;
mod plan_localstack;
mod plan_moto;
mod plan_offline_analysis;
mod plan_recorded;
mod plan_render;
mod policy;
mod policy_override;
mod schema;
mod secrets_manager;
mod secrets_through_outputs;
mod serve;
mod serve_drift;
mod stack_options;
mod stack_regions;
mod store;
mod templates_lint;
mod unchanged;
mod validate;
mod var_expressions;
mod wiring;
