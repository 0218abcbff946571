//! Listings: the items of one partition whose sort keys start with a prefix, queried strongly
//! consistent and page by page, in sort-key order or newest first, all of them or at most so
//! many.

use super::DynamoStore;
use super::attributes::{Item, s};
use crate::store::{RunStatus, StoreError};

/// What a listing asks for.
pub(super) struct Listing<'a> {
    pk: &'a str,
    prefix: &'a str,
    newest_first: bool,
    /// At most this many items.
    max: Option<usize>,
    /// Only runs whose status is `running`.
    only_running: bool,
}

impl<'a> Listing<'a> {
    /// Every item of partition `pk` whose sort key starts with `prefix`, in sort-key order.
    pub(super) fn of(pk: &'a str, prefix: &'a str) -> Listing<'a> {
        Listing {
            pk,
            prefix,
            newest_first: false,
            max: None,
            only_running: false,
        }
    }

    /// In reverse sort-key order: newest first where the sort keys start with a time.
    pub(super) fn newest_first(self) -> Listing<'a> {
        Listing {
            newest_first: true,
            ..self
        }
    }

    /// At most `max` items.
    pub(super) fn at_most(self, max: usize) -> Listing<'a> {
        Listing {
            max: Some(max),
            ..self
        }
    }

    /// Only the runs whose status is `running`.
    pub(super) fn only_running(self) -> Listing<'a> {
        Listing {
            only_running: true,
            ..self
        }
    }
}

impl DynamoStore {
    /// The items a listing asks for, page by page.
    pub(super) async fn query(&self, q: Listing<'_>) -> Result<Vec<Item>, StoreError> {
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
}
