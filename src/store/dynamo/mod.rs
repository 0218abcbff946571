//! The state store in one DynamoDB table, for several replicas of `formwork serve` (or CI jobs
//! on different machines). Locks are conditional writes; every read that a decision depends on
//! is strongly consistent.
//!
//! # Table
//!
//! One table with a string partition key `pk` and a string sort key `sk`, on-demand billing
//! ([`DynamoStore::ensure_table`] creates it). Items, as `pk` / `sk`:
//!
//! - `PLAN#<id>` / `PLAN`: a plan — `created_at`, `created_ms`, `head_commit`, `environments`,
//!   and its JSON in `document`; or, when the JSON is larger than [`INLINE_PLAN_MAX`] bytes,
//!   `generation` and `chunks` (a count) instead of `document`.
//! - `PLAN#<id>` / `CHUNK#<generation>#<n>`: part `n` (5 digits, from 0) of a large plan's JSON,
//!   in `data`. A new version of the plan writes a new generation before its `PLAN` item, then
//!   removes the old one, so a reader sees one version whole.
//! - `ENV#<env>` / `PLAN#<created_ms>#<id>`: plan `plan_id` (of commit `head_commit`) covers
//!   `env`, for [`Store::latest_plan`] (the highest sort key wins: newest, then highest id) and
//!   [`Store::latest_plan_of_commit`].
//! - `LOCK#<env>` / `LOCK`: the lock of `env`.
//! - `RUN#<id>` / `RUN`: a run; `next_unit` numbers its stacks.
//! - `RUN#<id>` / `UNIT#<stack>`: the result of one stack; `ord` is the order in which it was
//!   first recorded.
//! - `ENV#<env>` / `RUN#<started_at>#<id>` and `RUNS` / `RUN#<started_at>#<id>`: copies of the
//!   run, to list the runs of an environment and of all, newest first.
//! - `ENV#<env>` / `DEPLOYED`: the commit `env` runs.
//! - `ENV#<env>` / `STACK#<stack>`: where one stack of `env` stands.
//! - `ENV#<env>` / `EVENT#<at>#<random>` and `EVENTS` / `EVENT#<at>#<random>`: an audit event,
//!   listed per environment and for all.
//!
//! Times in sort keys are [`Millis`] zero-padded to 20 digits, so that sort keys order by time;
//! the exact values are also kept as number attributes. Listings query one partition newest
//! first and page through results ([`Store::unfinished_runs`] filters an environment's runs on
//! `status`). The three copies of a run are written in one transaction, and so are a forced
//! unlock and its event. Events of the same millisecond come back in no particular order.
//!
//! A lock is taken with a put conditional on `attribute_not_exists(pk) OR lease_expires_at <
//! :now`; it is renewed and released only with `token = :token`, so two callers never both hold
//! one and a holder that lost it finds out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType, Put,
    ReturnValue, ScalarAttributeType, TableStatus, TransactWriteItem, Update,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{
    Deployed, Event, Lock, LockError, Millis, Run, RunStatus, StackDeployed, Store, StoreError,
    UnitResult, decode_plan, encode_plan, lease_end, new_token, stored_run_status,
    stored_unit_state, unlock_detail,
};
use crate::plan::model::Plan;

/// The largest plan JSON, in bytes, kept inline in the plan's item. Larger ones are split into
/// chunk items of at most [`CHUNK_SIZE`] bytes (DynamoDB items are limited to 400 KB).
pub const INLINE_PLAN_MAX: usize = 350_000;

/// The largest part of a plan's JSON kept in one chunk item, in bytes.
pub const CHUNK_SIZE: usize = 350_000;

/// How long [`DynamoStore::ensure_table`] waits for a new table to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a write that lost a race with another writer is tried again.
const ATTEMPTS: usize = 5;

type Item = HashMap<String, AttributeValue>;

/// The state store in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<usize>,
}

/// Whether `name` is a valid DynamoDB table name: 3 to 255 of `a-z A-Z 0-9 _ - .`.
pub fn is_valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn opt_s(v: Option<&str>) -> AttributeValue {
    v.map_or(AttributeValue::Null(true), s)
}

fn opt_n(v: Option<i64>) -> AttributeValue {
    v.map_or(AttributeValue::Null(true), n)
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A time in a sort key: zero-padded so that keys sort by time.
fn time_key(ms: Millis) -> String {
    format!("{:020}", ms.max(0))
}

fn plan_pk(id: &str) -> String {
    format!("PLAN#{id}")
}

fn env_pk(environment: &str) -> String {
    format!("ENV#{environment}")
}

fn lock_pk(environment: &str) -> String {
    format!("LOCK#{environment}")
}

fn run_pk(id: &str) -> String {
    format!("RUN#{id}")
}

fn run_sk(run: &Run) -> String {
    format!("RUN#{}#{}", time_key(run.started_at), run.id)
}

fn plan_index_sk(created_ms: Millis, id: &str) -> String {
    format!("PLAN#{}#{id}", time_key(created_ms))
}

/// Reads attributes of one item, naming the item in errors.
struct Fields<'a> {
    item: &'a Item,
}

impl Fields<'_> {
    fn missing(&self, name: &str, wanted: &str) -> StoreError {
        let part = |k: &str| {
            self.item
                .get(k)
                .and_then(|v| v.as_s().ok())
                .map_or("?", String::as_str)
                .to_string()
        };
        StoreError::Data(format!(
            "item {}/{} has no {wanted} attribute `{name}`",
            part("pk"),
            part("sk")
        ))
    }

    fn str(&self, name: &str) -> Result<String, StoreError> {
        self.opt_str(name)?
            .ok_or_else(|| self.missing(name, "string"))
    }

    fn opt_str(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.missing(name, "string")),
        }
    }

    fn num(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_num(name)?
            .ok_or_else(|| self.missing(name, "number"))
    }

    fn opt_num(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| self.missing(name, "integer")),
            Some(_) => Err(self.missing(name, "number")),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::Bool(v)) => Ok(*v),
            _ => Err(self.missing(name, "boolean")),
        }
    }
}

fn fields(item: &Item) -> Fields<'_> {
    Fields { item }
}

fn lock_item(lock: &Lock) -> Item {
    let mut item = key(lock_pk(&lock.environment), "LOCK");
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

/// The attribute DynamoDB's time to live reads (seconds since the epoch).
const TTL_ATTRIBUTE: &str = "expires";

fn lock_from(item: &Item) -> Result<Lock, StoreError> {
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

fn run_item(pk: String, sk: String, run: &Run) -> Item {
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
}

fn run_from(item: &Item) -> Result<Run, StoreError> {
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

fn unit_item(unit: &UnitResult, ord: i64) -> Item {
    let mut item = key(run_pk(&unit.run_id), format!("UNIT#{}", unit.stack));
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

fn unit_from(item: &Item) -> Result<(i64, UnitResult), StoreError> {
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

fn event_items(event: &Event) -> [Item; 2] {
    let sk = format!("EVENT#{}#{}", time_key(event.at), new_token());
    let item = |pk: String| {
        let mut item = key(pk, sk.clone());
        item.extend([
            ("environment".to_string(), s(&event.environment)),
            ("at".to_string(), n(event.at)),
            ("kind".to_string(), s(&event.kind)),
            ("actor".to_string(), s(&event.actor)),
            ("detail".to_string(), s(&event.detail)),
        ]);
        item
    };
    [item(env_pk(&event.environment)), item("EVENTS".to_string())]
}

fn event_from(item: &Item) -> Result<Event, StoreError> {
    let f = fields(item);
    Ok(Event {
        environment: f.str("environment")?,
        at: f.num("at")?,
        kind: f.str("kind")?,
        actor: f.str("actor")?,
        detail: f.str("detail")?,
    })
}

fn deployed_from(item: &Item) -> Result<Deployed, StoreError> {
    let f = fields(item);
    Ok(Deployed {
        environment: f.str("environment")?,
        commit: f.str("commit")?,
        plan_id: f.opt_str("plan_id")?,
        run_id: f.str("run_id")?,
        at: f.num("at")?,
    })
}

/// Splits `text` into parts of at most `size` bytes, on character boundaries.
fn split_utf8(text: &str, size: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // `size` is smaller than the first character: it goes whole.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (part, tail) = rest.split_at(end);
        parts.push(part);
        rest = tail;
    }
    parts
}

/// Whether a service error is a failed condition (of a conditional write).
fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// Whether a transaction was cancelled (a condition of one of its writes failed, or it
/// conflicted with another transaction).
fn transaction_cancelled<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_transaction_canceled_exception())
}

/// What a listing asks for.
struct Listing<'a> {
    pk: &'a str,
    prefix: &'a str,
    newest_first: bool,
    /// At most this many items.
    max: Option<usize>,
    /// Only runs whose status is `running`.
    only_running: bool,
}

impl DynamoStore {
    /// A store in `table`, through `client`. Call [`DynamoStore::ensure_table`] before use
    /// unless the table is known to exist.
    pub fn new(client: Client, table: String) -> DynamoStore {
        DynamoStore {
            client,
            table,
            page_size: None,
        }
    }

    /// Asks for at most `items` items per page of a query (by default DynamoDB's 1 MB pages).
    pub fn with_page_size(mut self, items: usize) -> DynamoStore {
        self.page_size = Some(items.max(1));
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table when it does not exist (on-demand billing, string keys `pk` and
    /// `sk`), and waits until it is active. Fails when a table of that name exists with other
    /// keys.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(out) => {
                let keys: Vec<(&str, &KeyType)> = out
                    .table()
                    .map(|t| t.key_schema())
                    .unwrap_or_default()
                    .iter()
                    .map(|k| (k.attribute_name(), k.key_type()))
                    .collect();
                if keys != [("pk", &KeyType::Hash), ("sk", &KeyType::Range)]
                    && keys != [("sk", &KeyType::Range), ("pk", &KeyType::Hash)]
                {
                    return Err(self.message(
                        "the table exists, but its key is not (pk, sk): it is not a formwork \
                         state table; name another one",
                    ));
                }
                if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    return Ok(());
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.create_table().await?;
            }
            Err(e) => return Err(self.sdk("DescribeTable", e)),
        }
        self.wait_active().await
    }

    async fn create_table(&self) -> Result<(), StoreError> {
        let build = |e: aws_smithy_types::error::operation::BuildError| self.message(e.to_string());
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table = %self.table, "created the DynamoDB state table");
                let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                    .attribute_name(TTL_ATTRIBUTE)
                    .enabled(true)
                    .build()
                    .map_err(build)?;
                if let Err(e) = self
                    .client
                    .update_time_to_live()
                    .table_name(&self.table)
                    .time_to_live_specification(ttl)
                    .send()
                    .await
                {
                    tracing::warn!(table = %self.table, error = %self.sdk("UpdateTimeToLive", e), "expired locks will stay in the table");
                }
                Ok(())
            }
            // Made by someone else meanwhile.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(self.sdk("CreateTable", e)),
        }
    }

    async fn wait_active(&self) -> Result<(), StoreError> {
        let started = Instant::now();
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.sdk("DescribeTable", e))?;
            let status = out.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() > TABLE_ACTIVE_TIMEOUT {
                return Err(self.message(format!(
                    "the table is not active after {} s (status {})",
                    TABLE_ACTIVE_TIMEOUT.as_secs(),
                    status.map_or("unknown", |s| s.as_str())
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn message(&self, message: impl Into<String>) -> StoreError {
        StoreError::Dynamo {
            table: self.table.clone(),
            message: message.into(),
        }
    }

    fn sdk<E, R>(&self, operation: &str, err: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let detail = match err.as_service_error() {
            Some(e) => match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => DisplayErrorContext(&err).to_string(),
            },
            None => DisplayErrorContext(&err).to_string(),
        };
        self.message(format!("{operation} failed: {detail}"))
    }

    fn build_err(&self, e: aws_smithy_types::error::operation::BuildError) -> StoreError {
        self.message(e.to_string())
    }

    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| self.sdk("GetItem", e))
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.sdk("PutItem", e))
    }

    async fn delete(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.sdk("DeleteItem", e))
    }

    /// The items of one partition whose sort key starts with a prefix, page by page.
    async fn query(&self, q: Listing<'_>) -> Result<Vec<Item>, StoreError> {
        let mut out: Vec<Item> = Vec::new();
        if q.max == Some(0) {
            return Ok(out);
        }
        let mut start = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(q.pk))
                .expression_attribute_values(":prefix", s(q.prefix))
                .scan_index_forward(!q.newest_first)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            if q.only_running {
                req = req
                    .filter_expression("#status = :running")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":running", s(RunStatus::Running.as_str()));
            }
            let wanted = match (q.max, q.only_running) {
                (Some(max), false) => Some(max - out.len()),
                _ => None,
            };
            let page = match (wanted, self.page_size) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(page) = page {
                req = req.limit(i32::try_from(page).unwrap_or(i32::MAX));
            }
            let resp = req.send().await.map_err(|e| self.sdk("Query", e))?;
            out.extend(resp.items.unwrap_or_default());
            if q.max.is_some_and(|max| out.len() >= max) {
                break;
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        if let Some(max) = q.max {
            out.truncate(max);
        }
        Ok(out)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if transaction_cancelled(&e) => Ok(false),
            Err(e) => Err(self.sdk("TransactWriteItems", e)),
        }
    }

    fn tx_put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(|e| self.build_err(e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Reads a plan, reassembling it from its chunks when it was split.
    async fn load_plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        let pk = plan_pk(id);
        for _ in 0..ATTEMPTS {
            let Some(head) = self.get(&pk, "PLAN").await? else {
                return Ok(None);
            };
            let f = fields(&head);
            let doc = match f.opt_str("document")? {
                Some(doc) => doc,
                None => {
                    let generation = f.str("generation")?;
                    let count = f.num("chunks")?;
                    let chunks = self
                        .query(Listing {
                            pk: &pk,
                            prefix: &format!("CHUNK#{generation}#"),
                            newest_first: false,
                            max: None,
                            only_running: false,
                        })
                        .await?;
                    if i64::try_from(chunks.len()).ok() != Some(count) {
                        // Replaced while being read: read the new one.
                        continue;
                    }
                    let mut doc = String::new();
                    for chunk in &chunks {
                        doc.push_str(&fields(chunk).str("data")?);
                    }
                    doc
                }
            };
            return decode_plan(id, &doc).map(Some);
        }
        Err(self.message(format!(
            "plan `{id}` kept changing while it was read; try again"
        )))
    }

    /// Writes a stack's result: in place when it was recorded before (keeping its order),
    /// else as a new item numbered from the run's counter.
    async fn write_unit(&self, unit: &UnitResult) -> Result<(), StoreError> {
        let pk = run_pk(&unit.run_id);
        let sk = format!("UNIT#{}", unit.stack);
        for _ in 0..ATTEMPTS {
            if let Some(old) = self.get(&pk, &sk).await? {
                let ord = fields(&old).num("ord")?;
                let put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(unit_item(unit, ord)))
                    .condition_expression("attribute_exists(pk) AND ord = :ord")
                    .expression_attribute_values(":ord", n(ord))
                    .send()
                    .await;
                match put {
                    Ok(_) => return Ok(()),
                    Err(e) if condition_failed(&e) => continue,
                    Err(e) => return Err(self.sdk("PutItem", e)),
                }
            }
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(&pk, "RUN")))
                .update_expression("ADD next_unit :one")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await;
            let ord = match counted {
                Ok(out) => fields(&out.attributes.unwrap_or_default()).num("next_unit")?,
                Err(e) if condition_failed(&e) => {
                    return Err(StoreError::Data(format!(
                        "there is no run `{}`",
                        unit.run_id
                    )));
                }
                Err(e) => return Err(self.sdk("UpdateItem", e)),
            };
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(unit_item(unit, ord)))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match put {
                Ok(_) => return Ok(()),
                // Recorded by someone else meanwhile: update theirs.
                Err(e) if condition_failed(&e) => continue,
                Err(e) => return Err(self.sdk("PutItem", e)),
            }
        }
        Err(self.message(format!(
            "stack `{}` of run `{}` kept changing while it was written",
            unit.stack, unit.run_id
        )))
    }
}

impl Store for DynamoStore {
    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let (created_ms, doc) = encode_plan(plan)?;
        let pk = plan_pk(&plan.id);
        let old = self.get(&pk, "PLAN").await?;

        let mut head = key(&pk, "PLAN");
        head.extend([
            ("id".to_string(), s(&plan.id)),
            ("created_at".to_string(), s(&plan.created_at)),
            ("created_ms".to_string(), n(created_ms)),
            ("head_commit".to_string(), s(&plan.head.commit)),
            (
                "environments".to_string(),
                AttributeValue::L(plan.environments.iter().map(|e| s(&e.name)).collect()),
            ),
        ]);
        if doc.len() <= INLINE_PLAN_MAX {
            head.insert("document".to_string(), s(doc));
        } else {
            // Chunks of a new generation first, then the head naming them: a reader sees
            // either the old plan or the whole new one.
            let generation = &new_token()[..16];
            let parts = split_utf8(&doc, CHUNK_SIZE);
            for (i, part) in parts.iter().enumerate() {
                let mut chunk = key(&pk, format!("CHUNK#{generation}#{i:05}"));
                chunk.insert("data".to_string(), s(*part));
                self.put(chunk).await?;
            }
            head.insert("generation".to_string(), s(generation));
            head.insert("chunks".to_string(), n(parts.len() as i64));
        }
        self.put(head).await?;
        for env in &plan.environments {
            let mut index = key(env_pk(&env.name), plan_index_sk(created_ms, &plan.id));
            index.insert("plan_id".to_string(), s(&plan.id));
            index.insert("head_commit".to_string(), s(&plan.head.commit));
            self.put(index).await?;
        }

        // What the plan replaced: index entries it no longer has, chunks of the old version.
        if let Some(old) = old {
            let f = fields(&old);
            let old_ms = f.num("created_ms")?;
            let old_envs: Vec<String> = match old.get("environments") {
                Some(AttributeValue::L(l)) => {
                    l.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
                }
                _ => Vec::new(),
            };
            for env in old_envs {
                let still = old_ms == created_ms && plan.environments.iter().any(|e| e.name == env);
                if !still {
                    self.delete(&env_pk(&env), &plan_index_sk(old_ms, &plan.id))
                        .await?;
                }
            }
            if let Some(generation) = f.opt_str("generation")? {
                let chunks = self
                    .query(Listing {
                        pk: &pk,
                        prefix: &format!("CHUNK#{generation}#"),
                        newest_first: false,
                        max: None,
                        only_running: false,
                    })
                    .await?;
                for chunk in chunks {
                    self.delete(&pk, &fields(&chunk).str("sk")?).await?;
                }
            }
        }
        Ok(())
    }

    async fn plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        self.load_plan(id).await
    }

    async fn latest_plan(&self, environment: &str) -> Result<Option<Plan>, StoreError> {
        let newest = self
            .query(Listing {
                pk: &env_pk(environment),
                prefix: "PLAN#",
                newest_first: true,
                max: Some(1),
                only_running: false,
            })
            .await?;
        match newest.first() {
            Some(index) => self.load_plan(&fields(index).str("plan_id")?).await,
            None => Ok(None),
        }
    }

    async fn latest_plan_of_commit(
        &self,
        environment: &str,
        commit: &str,
    ) -> Result<Option<Plan>, StoreError> {
        let index = self
            .query(Listing {
                pk: &env_pk(environment),
                prefix: "PLAN#",
                newest_first: true,
                max: None,
                only_running: false,
            })
            .await?;
        for item in index {
            let f = fields(&item);
            if f.opt_str("head_commit")?.as_deref() != Some(commit) {
                continue;
            }
            if let Some(plan) = self.load_plan(&f.str("plan_id")?).await? {
                return Ok(Some(plan));
            }
        }
        Ok(None)
    }

    async fn try_lock(
        &self,
        environment: &str,
        owner: &str,
        reason: &str,
        lease: Duration,
        now: Millis,
    ) -> Result<Lock, LockError> {
        for _ in 0..ATTEMPTS {
            let lock = Lock::new(environment, owner, reason, lease, now);
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(lock_item(&lock)))
                .condition_expression("attribute_not_exists(pk) OR #expires < :now")
                .expression_attribute_names("#expires", "lease_expires_at")
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(lock),
                Err(e) if condition_failed(&e) => {
                    match self.lock(environment).await? {
                        Some(held) if held.lease_expires_at >= now => {
                            return Err(LockError::Held(held));
                        }
                        // Released or run out meanwhile: try again.
                        _ => continue,
                    }
                }
                Err(e) => return Err(self.sdk("PutItem", e).into()),
            }
        }
        Err(self
            .message(format!(
                "the lock of environment `{environment}` kept changing hands; try again"
            ))
            .into())
    }

    async fn renew_lock(
        &self,
        lock: &Lock,
        lease: Duration,
        now: Millis,
    ) -> Result<Lock, LockError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(lock_pk(&lock.environment), "LOCK")))
            .update_expression("SET #expires = :expires")
            .condition_expression("#token = :token")
            .expression_attribute_names("#expires", "lease_expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":expires", n(lease_end(now, lease)))
            .expression_attribute_values(":token", s(&lock.token))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match updated {
            Ok(out) => Ok(lock_from(&out.attributes.unwrap_or_default())?),
            Err(e) if condition_failed(&e) => Err(LockError::Lost(lock.environment.clone())),
            Err(e) => Err(self.sdk("UpdateItem", e).into()),
        }
    }

    async fn release_lock(&self, lock: &Lock) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(lock_pk(&lock.environment), "LOCK")))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", s(&lock.token))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(self.sdk("DeleteItem", e)),
        }
    }

    async fn lock(&self, environment: &str) -> Result<Option<Lock>, StoreError> {
        self.get(&lock_pk(environment), "LOCK")
            .await?
            .map(|item| lock_from(&item))
            .transpose()
    }

    async fn force_unlock(
        &self,
        environment: &str,
        actor: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Option<Lock>, StoreError> {
        for _ in 0..ATTEMPTS {
            let Some(lock) = self.lock(environment).await? else {
                return Ok(None);
            };
            let event = Event {
                environment: environment.to_string(),
                at: now,
                kind: "unlock".to_string(),
                actor: actor.to_string(),
                detail: unlock_detail(&lock, reason),
            };
            // The lock goes only if it is still the one read, together with its event.
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(lock_pk(environment), "LOCK")))
                .condition_expression("#token = :token")
                .expression_attribute_names("#token", "token")
                .expression_attribute_values(":token", s(&lock.token))
                .build()
                .map_err(|e| self.build_err(e))?;
            let mut writes = vec![TransactWriteItem::builder().delete(delete).build()];
            for item in event_items(&event) {
                writes.push(self.tx_put(item, None)?);
            }
            if self.transact(writes).await? {
                return Ok(Some(lock));
            }
        }
        Err(self.message(format!(
            "the lock of environment `{environment}` kept changing hands; try again"
        )))
    }

    async fn start_run(&self, run: &Run) -> Result<(), StoreError> {
        let writes = vec![
            self.tx_put(
                run_item(run_pk(&run.id), "RUN".to_string(), run),
                Some("attribute_not_exists(pk)"),
            )?,
            self.tx_put(run_item(env_pk(&run.environment), run_sk(run), run), None)?,
            self.tx_put(run_item("RUNS".to_string(), run_sk(run), run), None)?,
        ];
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(StoreError::Data(format!(
                "a run `{}` was already recorded",
                run.id
            )))
        }
    }

    async fn put_unit(&self, unit: &UnitResult) -> Result<(), StoreError> {
        self.write_unit(unit).await
    }

    async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        now: Millis,
    ) -> Result<(), StoreError> {
        let Some(item) = self.get(&run_pk(run_id), "RUN").await? else {
            return Err(StoreError::Data(format!("there is no run `{run_id}`")));
        };
        let run = run_from(&item)?;
        let mut writes = Vec::new();
        for (pk, sk) in [
            (run_pk(run_id), "RUN".to_string()),
            (env_pk(&run.environment), run_sk(&run)),
            ("RUNS".to_string(), run_sk(&run)),
        ] {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression("SET #status = :status, #finished = :finished")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#finished", "finished_at")
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":finished", n(now))
                .build()
                .map_err(|e| self.build_err(e))?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(self.message(format!(
                "run `{run_id}` was being written by someone else; try again"
            )))
        }
    }

    async fn run(&self, id: &str) -> Result<Option<(Run, Vec<UnitResult>)>, StoreError> {
        let pk = run_pk(id);
        let Some(item) = self.get(&pk, "RUN").await? else {
            return Ok(None);
        };
        let run = run_from(&item)?;
        let items = self
            .query(Listing {
                pk: &pk,
                prefix: "UNIT#",
                newest_first: false,
                max: None,
                only_running: false,
            })
            .await?;
        let mut units = items
            .iter()
            .map(unit_from)
            .collect::<Result<Vec<_>, StoreError>>()?;
        units.sort_by_key(|(ord, _)| *ord);
        Ok(Some((run, units.into_iter().map(|(_, u)| u).collect())))
    }

    async fn runs(&self, environment: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError> {
        let pk = environment.map_or_else(|| "RUNS".to_string(), env_pk);
        self.query(Listing {
            pk: &pk,
            prefix: "RUN#",
            newest_first: true,
            max: Some(limit),
            only_running: false,
        })
        .await?
        .iter()
        .map(run_from)
        .collect()
    }

    async fn unfinished_runs(&self, environment: &str) -> Result<Vec<Run>, StoreError> {
        self.query(Listing {
            pk: &env_pk(environment),
            prefix: "RUN#",
            newest_first: true,
            max: None,
            only_running: true,
        })
        .await?
        .iter()
        .map(run_from)
        .collect()
    }

    async fn set_deployed(&self, d: &Deployed) -> Result<(), StoreError> {
        let mut item = key(env_pk(&d.environment), "DEPLOYED");
        item.extend([
            ("environment".to_string(), s(&d.environment)),
            ("commit".to_string(), s(&d.commit)),
            ("plan_id".to_string(), opt_s(d.plan_id.as_deref())),
            ("run_id".to_string(), s(&d.run_id)),
            ("at".to_string(), n(d.at)),
        ]);
        self.put(item).await
    }

    async fn set_stacks_deployed(&self, records: &[StackDeployed]) -> Result<(), StoreError> {
        // One item each: a stack's record stands on its own, so no transaction is needed.
        for d in records {
            let mut item = key(env_pk(&d.environment), format!("STACK#{}", d.stack));
            item.extend([
                ("environment".to_string(), s(&d.environment)),
                ("stack".to_string(), s(&d.stack)),
                ("commit".to_string(), s(&d.commit)),
                ("config_hash".to_string(), s(&d.config_hash)),
                ("run_id".to_string(), s(&d.run_id)),
                ("at".to_string(), n(d.at)),
            ]);
            self.put(item).await?;
        }
        Ok(())
    }

    async fn stacks_deployed(&self, environment: &str) -> Result<Vec<StackDeployed>, StoreError> {
        self.query(Listing {
            pk: &env_pk(environment),
            prefix: "STACK#",
            newest_first: false,
            max: None,
            only_running: false,
        })
        .await?
        .iter()
        .map(|item| {
            let f = fields(item);
            Ok(StackDeployed {
                environment: f.str("environment")?,
                stack: f.str("stack")?,
                commit: f.str("commit")?,
                config_hash: f.str("config_hash")?,
                run_id: f.str("run_id")?,
                at: f.num("at")?,
            })
        })
        .collect()
    }

    async fn deployed(&self, environment: &str) -> Result<Option<Deployed>, StoreError> {
        self.get(&env_pk(environment), "DEPLOYED")
            .await?
            .map(|item| deployed_from(&item))
            .transpose()
    }

    async fn record_event(&self, event: &Event) -> Result<(), StoreError> {
        let writes = event_items(event)
            .into_iter()
            .map(|item| self.tx_put(item, None))
            .collect::<Result<Vec<_>, _>>()?;
        if self.transact(writes).await? {
            Ok(())
        } else {
            Err(self.message("recording an event was refused; try again".to_string()))
        }
    }

    async fn prune_locks(&self, _prefix: &str, _before: Millis) -> Result<usize, StoreError> {
        // DynamoDB's time to live removes them (the `expires` attribute).
        Ok(0)
    }

    async fn events(
        &self,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let pk = environment.map_or_else(|| "EVENTS".to_string(), env_pk);
        self.query(Listing {
            pk: &pk,
            prefix: "EVENT#",
            newest_first: true,
            max: Some(limit),
            only_running: false,
        })
        .await?
        .iter()
        .map(event_from)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_character_boundaries() {
        let text = "aé€😀".repeat(1000);
        for size in [1, 4, 5, 7, 100] {
            let parts = split_utf8(&text, size);
            assert!(
                parts
                    .iter()
                    .all(|p| p.len() <= size.max(4) && !p.is_empty())
            );
            assert_eq!(parts.concat(), text);
        }
        assert!(split_utf8("", 10).is_empty());
    }

    #[test]
    fn time_keys_sort_by_time() {
        assert!(time_key(999) < time_key(1000));
        assert!(time_key(1_700_000_000_000) < time_key(17_000_000_000_000));
        assert_eq!(time_key(-5), time_key(0));
    }

    #[test]
    fn table_names() {
        assert!(is_valid_table_name("formwork-state"));
        assert!(is_valid_table_name("a.b_c"));
        assert!(!is_valid_table_name("ab"));
        assert!(!is_valid_table_name("bad name"));
        assert!(!is_valid_table_name(""));
    }
}
