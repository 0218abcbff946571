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
//! - `POLICY#<key>` / `RESULT`: a policy result already evaluated (`record`, Guard's record as
//!   JSON; `at`), by the SHA-256 of the rules and the document (`crate::policy::cache`).
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
//!
//! # Modules
//!
//! `operations` implements each [`Store`] operation as the items it reads and writes; `items`
//! is the layout above (keys, and each record as items and back) over `attributes` (attribute
//! values, read with errors that name the item); `plans` keeps a plan's JSON inline or in
//! chunks; `units` numbers a run's stacks; `requests` and `listing` are the DynamoDB requests
//! (one item, transactions, paged queries); `table` creates the table.

mod attributes;
mod items;
mod listing;
mod operations;
mod plans;
mod requests;
mod table;
mod units;

use aws_sdk_dynamodb::Client;

pub use plans::{CHUNK_SIZE, INLINE_PLAN_MAX};
pub use table::is_valid_table_name;

#[cfg(doc)]
use super::{Millis, Store};

/// How often a write that lost a race with another writer is tried again.
const ATTEMPTS: usize = 5;

/// The state store in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<usize>,
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
}
