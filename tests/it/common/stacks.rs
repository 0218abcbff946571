//! Stacks as tests check them: what a deployed stack holds on a local endpoint (moto server or
//! LocalStack), read with the CloudFormation SDK, the SSM SecureStrings stacks read, and what
//! formwork itself says about a config repository (its graph's stacks, an offline plan's
//! units, an apply report's states).
//!
//! Every function that talks to an endpoint takes it and the region, as [`super::sdk`] does:
//! `stacks::outputs(moto(), REGION, "env-vpc")`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use aws_sdk_cloudformation::types::{Capability, Parameter, Stack, Tag};
use serde_json::Value;

use super::aws::Endpoint;
use super::sdk::{self, block, formwork_on};
use super::{Repo, Run};

/// The stack `stack` as DescribeStacks gives it.
pub fn describe(ep: &Endpoint, region: &str, stack: &str) -> Stack {
    let cfn = sdk::cfn(ep, region);
    block(async {
        cfn.describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{stack}: {e:?}"))
            .stacks()[0]
            .clone()
    })
}

/// The stack named `stack`, or `None` when there is none.
pub fn describe_opt(ep: &Endpoint, region: &str, stack: &str) -> Option<Stack> {
    let cfn = sdk::cfn(ep, region);
    block(async {
        cfn.describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .ok()
            .and_then(|o| o.stacks().first().cloned())
    })
}

/// The outputs of a described stack, by key.
pub fn outputs_of(s: &Stack) -> BTreeMap<String, String> {
    s.outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap_or_default().to_string(),
                o.output_value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The parameters of a described stack, by key.
pub fn parameters_of(s: &Stack) -> BTreeMap<String, String> {
    s.parameters()
        .iter()
        .map(|p| {
            (
                p.parameter_key().unwrap_or_default().to_string(),
                p.parameter_value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The outputs of the deployed stack `stack`, by key.
pub fn outputs(ep: &Endpoint, region: &str, stack: &str) -> BTreeMap<String, String> {
    outputs_of(&describe(ep, region, stack))
}

/// The parameters of the deployed stack `stack`, by key.
pub fn parameters(ep: &Endpoint, region: &str, stack: &str) -> BTreeMap<String, String> {
    parameters_of(&describe(ep, region, stack))
}

/// One output of the deployed stack `stack`; fails when it has none of that key.
pub fn output(ep: &Endpoint, region: &str, stack: &str, key: &str) -> String {
    describe(ep, region, stack)
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(key))
        .and_then(|o| o.output_value())
        .unwrap_or_else(|| panic!("{stack} has no output {key}"))
        .to_string()
}

/// One parameter of the deployed stack `stack`; fails when it has none of that key.
pub fn parameter(ep: &Endpoint, region: &str, stack: &str, key: &str) -> String {
    describe(ep, region, stack)
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(key))
        .and_then(|p| p.parameter_value())
        .unwrap_or_else(|| panic!("{stack} has no parameter {key}"))
        .to_string()
}

/// Creates the stacks `keys` of environment `env` with CreateStack, exactly as formwork plans
/// them now on `ep`: the template at `template(key)` in `r`, the planned parameters (resolved
/// from the stacks deployed before) and `tags(key)`. For moto, whose stacks created by executing
/// a change set get no Outputs: stacks other stacks read are created this way, wave by wave.
pub fn create_as_planned(
    ep: &Endpoint,
    region: &str,
    r: &Repo,
    env: &str,
    keys: &[&str],
    template: impl Fn(&str) -> String,
    tags: impl Fn(&str) -> Vec<Tag>,
) {
    let mut args = vec!["plan", "--env", env, "--no-record", "--output", "json"];
    for k in keys {
        args.extend(["--stack", k]);
    }
    let run = formwork_on(ep, r.path(), &args);
    assert_eq!(run.code, 2, "{}", run.all());
    let plan = run.json();
    let cfn = sdk::cfn(ep, region);
    for key in keys {
        let unit = plan["environments"][0]["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["stack"] == *key)
            .unwrap_or_else(|| panic!("{key}: {plan:#}"))
            .clone();
        assert_eq!(unit["action"], "create", "{unit:#}");
        let params: Vec<Parameter> = unit["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["known_after_apply"], false, "{unit:#}");
                Parameter::builder()
                    .parameter_key(p["name"].as_str().unwrap())
                    .parameter_value(p["after"].as_str().unwrap())
                    .build()
            })
            .collect();
        let template = r.read(&template(key));
        let stack_name = unit["stack_name"].as_str().unwrap().to_string();
        block(async {
            // The change set the plan made left a stack in REVIEW_IN_PROGRESS.
            cfn.delete_stack()
                .stack_name(&stack_name)
                .send()
                .await
                .unwrap();
            cfn.create_stack()
                .stack_name(&stack_name)
                .template_body(template)
                .set_parameters(Some(params))
                .set_tags(Some(tags(key)))
                .capabilities(Capability::CapabilityIam)
                .send()
                .await
                .unwrap_or_else(|e| panic!("create {stack_name}: {e:?}"));
        });
    }
}

/// The physical id of the resource `logical_id` of the stack `stack`.
pub fn physical_id(ep: &Endpoint, region: &str, stack: &str, logical_id: &str) -> String {
    let cfn = sdk::cfn(ep, region);
    block(async {
        cfn.describe_stack_resource()
            .stack_name(stack)
            .logical_resource_id(logical_id)
            .send()
            .await
            .unwrap()
            .stack_resource_detail()
            .and_then(|d| d.physical_resource_id())
            .unwrap_or_else(|| panic!("{stack} has no {logical_id}"))
            .to_string()
    })
}

/// Puts the SSM SecureString parameter `name` (overwriting it), as a secret a stack reads.
pub fn put_secure_string(ep: &Endpoint, region: &str, name: &str, value: &str) {
    let ssm = sdk::ssm(ep, region);
    block(async {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    });
}

/// The value of SSM parameter `name`, which must exist.
pub fn ssm_value(ep: &Endpoint, region: &str, name: &str) -> String {
    let ssm = sdk::ssm(ep, region);
    block(async {
        ssm.get_parameter()
            .name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            .parameter()
            .and_then(|p| p.value())
            .unwrap_or_default()
            .to_string()
    })
}

/// `s` percent-encoded for a form body (query-protocol requests): all but unreserved bytes.
pub fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The stack keys of environment `env` in `r`, sorted, from `formwork graph --output json`
/// (which must exit 0).
pub fn graph_keys(r: &Repo, env: &str) -> Vec<String> {
    let run = r.run(&["graph", "--env", env, "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.all());
    let mut keys: Vec<String> = run.json()["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stack"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

/// `formwork graph --env env --output json` in `r`, as JSON.
pub fn graph(r: &Repo, env: &str) -> Value {
    r.run(&["graph", "--env", env, "--output", "json"]).json()
}

/// The units of environment `env` in a plan report (fails when the plan has no such
/// environment).
pub fn env_units<'a>(plan: &'a Value, env: &str) -> &'a [Value] {
    plan["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == env)
        .unwrap_or_else(|| panic!("{env}: {plan:#}"))["units"]
        .as_array()
        .unwrap()
}

/// The stack keys of environment `env` in a plan report, sorted, each checked to be a create
/// (an offline plan from an empty revision).
pub fn created_stacks(plan: &Value, env: &str) -> Vec<String> {
    let mut keys: Vec<String> = env_units(plan, env)
        .iter()
        .map(|u| {
            assert_eq!(u["action"], "create", "{u:#}");
            u["stack"].as_str().unwrap().to_string()
        })
        .collect();
    keys.sort();
    keys
}

/// The value the plan report gives the parameter `name` of `env`'s stack `stack` (empty when it
/// has none).
pub fn planned_parameter(plan: &Value, env: &str, stack: &str, name: &str) -> String {
    let u = env_units(plan, env)
        .iter()
        .find(|u| u["stack"] == stack)
        .unwrap_or_else(|| panic!("{env}/{stack}"));
    u["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["after"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The state of each stack in an apply report.
pub fn states(report: &Value) -> BTreeMap<String, String> {
    report["units"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"))
        .iter()
        .map(|u| {
            (
                u["stack"].as_str().unwrap().to_string(),
                u["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `formwork plan --report-calls --output json` with `args` on `ep`: the run, the plan, and the
/// AWS calls it reported counting.
pub fn plan_with_calls(
    ep: &Endpoint,
    r: &Repo,
    args: &[&str],
) -> (Run, Value, BTreeMap<String, usize>) {
    let mut all = vec!["plan", "--report-calls", "--output", "json"];
    all.extend(args);
    let run = formwork_on(ep, r.path(), &all);
    let json: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.all()));
    let calls = run
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_default();
    (run, json, calls)
}

/// The plan of stack `stack` in a plan report's first environment.
pub fn unit<'a>(plan: &'a Value, stack: &str) -> &'a Value {
    plan["environments"][0]["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["stack"] == stack)
        .unwrap_or_else(|| panic!("no unit {stack} in {plan:#}"))
}
