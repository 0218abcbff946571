//! The item layout of the table (described in the parent module): the keys of each kind of item,
//! and each record written as its item (or items) and read back.

use aws_sdk_dynamodb::types::AttributeValue;

use super::attributes::{Item, fields, key, n, opt_n, opt_s, s, time_key};
use crate::plan::model::Plan;
use crate::store::{
    Deployed, Event, Lock, Millis, Run, StackDeployed, StackSeen, StoreError, UnitResult,
    new_token, stored_run_status, stored_unit_state,
};

/// The attribute DynamoDB's time to live reads (seconds since the epoch).
pub(super) const TTL_ATTRIBUTE: &str = "expires";

/// The partition of a plan: its item and the chunks of its JSON.
pub(super) fn plan_pk(id: &str) -> String {
    format!("PLAN#{id}")
}

/// The partition of an environment: its plan index, runs, records and events.
pub(super) fn env_pk(environment: &str) -> String {
    format!("ENV#{environment}")
}

/// The partition of an environment's lock.
pub(super) fn lock_pk(environment: &str) -> String {
    format!("LOCK#{environment}")
}

/// The partition of a run: its item and the results of its stacks.
pub(super) fn run_pk(id: &str) -> String {
    format!("RUN#{id}")
}

/// The sort key of a stack's result in its run's partition.
pub(super) fn unit_sk(stack: &str) -> String {
    format!("UNIT#{stack}")
}

/// The sort key of a plan's entry in the index of an environment's plans.
fn plan_index_sk(created_ms: Millis, id: &str) -> String {
    format!("PLAN#{}#{id}", time_key(created_ms))
}

/// The key of the entry of plan `id`, created at `created_ms`, in the index of `environment`.
pub(super) fn plan_index_key(environment: &str, created_ms: Millis, id: &str) -> (String, String) {
    (env_pk(environment), plan_index_sk(created_ms, id))
}

/// The item of a plan, without its JSON (which goes inline or in chunks).
pub(super) fn plan_item(plan: &Plan, created_ms: Millis) -> Item {
    let mut item = key(plan_pk(&plan.id), "PLAN");
    item.extend([
        ("id".to_string(), s(&plan.id)),
        ("created_at".to_string(), s(&plan.created_at)),
        ("created_ms".to_string(), n(created_ms)),
        ("head_commit".to_string(), s(&plan.head.commit)),
        (
            "environments".to_string(),
            AttributeValue::L(plan.environments.iter().map(|e| s(&e.name)).collect()),
        ),
    ]);
    item
}

/// The environments a plan's item says it covers.
pub(super) fn plan_environments(item: &Item) -> Vec<String> {
    match item.get("environments") {
        Some(AttributeValue::L(l)) => l.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The entry of `plan`, created at `created_ms`, in the index of `environment`.
pub(super) fn plan_index_item(environment: &str, created_ms: Millis, plan: &Plan) -> Item {
    let (pk, sk) = plan_index_key(environment, created_ms, &plan.id);
    let mut item = key(pk, sk);
    item.insert("plan_id".to_string(), s(&plan.id));
    item.insert("head_commit".to_string(), s(&plan.head.commit));
    item
}

/// The key of an environment's lock.
pub(super) fn lock_key(environment: &str) -> Item {
    key(lock_pk(environment), "LOCK")
}

pub(super) fn lock_item(lock: &Lock) -> Item {
    let mut item = lock_key(&lock.environment);
    item.extend([
        ("environment".to_string(), s(&lock.environment)),
        ("owner".to_string(), s(&lock.owner)),
        ("reason".to_string(), s(&lock.reason)),
        ("acquired_at".to_string(), n(lock.acquired_at)),
        ("lease_expires_at".to_string(), n(lock.lease_expires_at)),
        ("token".to_string(), s(&lock.token)),
        // DynamoDB's time to live removes the item a day after its lease ran out (an expired
        // lock is no lock; delivery ids seen are forgotten).
        (
            TTL_ATTRIBUTE.to_string(),
            n(lock.lease_expires_at / 1000 + 24 * 3600),
        ),
    ]);
    item
}

pub(super) fn lock_from(item: &Item) -> Result<Lock, StoreError> {
    let f = fields(item);
    Ok(Lock {
        environment: f.str("environment")?,
        owner: f.str("owner")?,
        reason: f.str("reason")?,
        acquired_at: f.num("acquired_at")?,
        lease_expires_at: f.num("lease_expires_at")?,
        token: f.str("token")?,
    })
}

/// The keys of the three copies of a run: its own item, and its entries in the listings of its
/// environment's runs and of all runs.
pub(super) fn run_keys(run: &Run) -> [(String, String); 3] {
    let listed = format!("RUN#{}#{}", time_key(run.started_at), run.id);
    [
        (run_pk(&run.id), "RUN".to_string()),
        (env_pk(&run.environment), listed.clone()),
        ("RUNS".to_string(), listed),
    ]
}

/// The three copies of a run (see [`run_keys`]).
pub(super) fn run_items(run: &Run) -> [Item; 3] {
    run_keys(run).map(|(pk, sk)| {
        let mut item = key(pk, sk);
        item.extend([
            ("id".to_string(), s(&run.id)),
            ("environment".to_string(), s(&run.environment)),
            ("plan_id".to_string(), opt_s(run.plan_id.as_deref())),
            ("commit".to_string(), s(&run.commit)),
            ("owner".to_string(), s(&run.owner)),
            ("started_at".to_string(), n(run.started_at)),
            ("finished_at".to_string(), opt_n(run.finished_at)),
            ("status".to_string(), s(run.status.as_str())),
        ]);
        item
    })
}

pub(super) fn run_from(item: &Item) -> Result<Run, StoreError> {
    let f = fields(item);
    let id = f.str("id")?;
    let status = f.str("status")?;
    Ok(Run {
        status: stored_run_status(&id, &status)?,
        environment: f.str("environment")?,
        plan_id: f.opt_str("plan_id")?,
        commit: f.str("commit")?,
        owner: f.str("owner")?,
        started_at: f.num("started_at")?,
        finished_at: f.opt_num("finished_at")?,
        id,
    })
}

/// The result of a stack, recorded `ord`-th in its run.
pub(super) fn unit_item(unit: &UnitResult, ord: i64) -> Item {
    let mut item = key(run_pk(&unit.run_id), unit_sk(&unit.stack));
    item.extend([
        ("run_id".to_string(), s(&unit.run_id)),
        ("stack".to_string(), s(&unit.stack)),
        ("stack_name".to_string(), s(&unit.stack_name)),
        ("state".to_string(), s(unit.state.as_str())),
        (
            "change_set_id".to_string(),
            opt_s(unit.change_set_id.as_deref()),
        ),
        (
            "client_request_token".to_string(),
            opt_s(unit.client_request_token.as_deref()),
        ),
        (
            "replanned".to_string(),
            AttributeValue::Bool(unit.replanned),
        ),
        ("message".to_string(), opt_s(unit.message.as_deref())),
        ("started_at".to_string(), opt_n(unit.started_at)),
        ("finished_at".to_string(), opt_n(unit.finished_at)),
        ("ord".to_string(), n(ord)),
    ]);
    item
}

/// The result of a stack, and the order in which it was first recorded in its run.
pub(super) fn unit_from(item: &Item) -> Result<(i64, UnitResult), StoreError> {
    let f = fields(item);
    let stack = f.str("stack")?;
    let run_id = f.str("run_id")?;
    let state = f.str("state")?;
    Ok((
        f.num("ord")?,
        UnitResult {
            state: stored_unit_state(&run_id, &stack, &state)?,
            stack_name: f.str("stack_name")?,
            change_set_id: f.opt_str("change_set_id")?,
            client_request_token: f.opt_str("client_request_token")?,
            replanned: f.bool("replanned")?,
            message: f.opt_str("message")?,
            started_at: f.opt_num("started_at")?,
            finished_at: f.opt_num("finished_at")?,
            run_id,
            stack,
        },
    ))
}

/// The two copies of an event: in the listings of its environment's events and of all events.
pub(super) fn event_items(event: &Event) -> [Item; 2] {
    let sk = format!("EVENT#{}#{}", time_key(event.at), new_token());
    [env_pk(&event.environment), "EVENTS".to_string()].map(|pk| {
        let mut item = key(pk, sk.clone());
        item.extend([
            ("environment".to_string(), s(&event.environment)),
            ("at".to_string(), n(event.at)),
            ("kind".to_string(), s(&event.kind)),
            ("actor".to_string(), s(&event.actor)),
            ("detail".to_string(), s(&event.detail)),
        ]);
        item
    })
}

pub(super) fn event_from(item: &Item) -> Result<Event, StoreError> {
    let f = fields(item);
    Ok(Event {
        environment: f.str("environment")?,
        at: f.num("at")?,
        kind: f.str("kind")?,
        actor: f.str("actor")?,
        detail: f.str("detail")?,
    })
}

pub(super) fn deployed_item(d: &Deployed) -> Item {
    let mut item = key(env_pk(&d.environment), "DEPLOYED");
    item.extend([
        ("environment".to_string(), s(&d.environment)),
        ("commit".to_string(), s(&d.commit)),
        ("plan_id".to_string(), opt_s(d.plan_id.as_deref())),
        ("run_id".to_string(), s(&d.run_id)),
        ("at".to_string(), n(d.at)),
    ]);
    item
}

pub(super) fn deployed_from(item: &Item) -> Result<Deployed, StoreError> {
    let f = fields(item);
    Ok(Deployed {
        environment: f.str("environment")?,
        commit: f.str("commit")?,
        plan_id: f.opt_str("plan_id")?,
        run_id: f.str("run_id")?,
        at: f.num("at")?,
    })
}

pub(super) fn stack_deployed_item(d: &StackDeployed) -> Item {
    let mut item = key(env_pk(&d.environment), format!("STACK#{}", d.stack));
    item.extend([
        ("environment".to_string(), s(&d.environment)),
        ("stack".to_string(), s(&d.stack)),
        ("commit".to_string(), s(&d.commit)),
        ("config_hash".to_string(), s(&d.config_hash)),
        ("run_id".to_string(), s(&d.run_id)),
        ("at".to_string(), n(d.at)),
    ]);
    item
}

pub(super) fn stack_deployed_from(item: &Item) -> Result<StackDeployed, StoreError> {
    let f = fields(item);
    Ok(StackDeployed {
        environment: f.str("environment")?,
        stack: f.str("stack")?,
        commit: f.str("commit")?,
        config_hash: f.str("config_hash")?,
        run_id: f.str("run_id")?,
        at: f.num("at")?,
    })
}

pub(super) fn stack_seen_item(d: &StackSeen) -> Item {
    let mut item = key(env_pk(&d.environment), format!("SEEN#{}", d.stack));
    item.extend([
        ("environment".to_string(), s(&d.environment)),
        ("stack".to_string(), s(&d.stack)),
        ("fingerprint".to_string(), s(&d.fingerprint)),
        ("stamp".to_string(), s(&d.stamp)),
        ("at".to_string(), n(d.at)),
    ]);
    item
}

pub(super) fn stack_seen_from(item: &Item) -> Result<StackSeen, StoreError> {
    let f = fields(item);
    Ok(StackSeen {
        environment: f.str("environment")?,
        stack: f.str("stack")?,
        fingerprint: f.str("fingerprint")?,
        stamp: f.str("stamp")?,
        at: f.num("at")?,
    })
}
