//! A plan's JSON in the table: inline in the plan's item when it is small enough, else split
//! into chunk items of one generation that the plan's item names; a plan read back whole (from
//! either), and what a new version of a plan replaced removed (its old index entries and chunks).
//!
//! The chunks of a plan are listed, written and named here only.

use super::attributes::{Item, fields, key, n, s};
use super::items::{plan_environments, plan_index_key, plan_pk};
use super::listing::Listing;
use super::{ATTEMPTS, DynamoStore};
use crate::plan::model::Plan;
use crate::store::{Millis, StoreError, decode_plan, new_token};

/// The largest plan JSON, in bytes, kept inline in the plan's item. Larger ones are split into
/// chunk items of at most [`CHUNK_SIZE`] bytes (DynamoDB items are limited to 400 KB).
pub const INLINE_PLAN_MAX: usize = 350_000;

/// The largest part of a plan's JSON kept in one chunk item, in bytes.
pub const CHUNK_SIZE: usize = 350_000;

/// The start of the sort keys of the chunks of one generation.
fn chunk_prefix(generation: &str) -> String {
    format!("CHUNK#{generation}#")
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

impl DynamoStore {
    /// Puts the JSON `doc` of plan `id` in the plan's `item` when it is at most
    /// [`INLINE_PLAN_MAX`] bytes. A larger one is written now as the chunks of a new generation,
    /// and `item` gets their generation and count: written after them, it makes a reader see
    /// either the old plan or the whole new one.
    pub(super) async fn put_document(
        &self,
        item: &mut Item,
        id: &str,
        doc: String,
    ) -> Result<(), StoreError> {
        if doc.len() <= INLINE_PLAN_MAX {
            item.insert("document".to_string(), s(doc));
            return Ok(());
        }
        let pk = plan_pk(id);
        let generation = &new_token()[..16];
        let parts = split_utf8(&doc, CHUNK_SIZE);
        for (i, part) in parts.iter().enumerate() {
            let mut chunk = key(&pk, format!("{}{i:05}", chunk_prefix(generation)));
            chunk.insert("data".to_string(), s(*part));
            self.put(chunk).await?;
        }
        item.insert("generation".to_string(), s(generation));
        item.insert("chunks".to_string(), n(parts.len() as i64));
        Ok(())
    }

    /// Reads a plan, reassembling it from its chunks when it was split.
    pub(super) async fn load_plan(&self, id: &str) -> Result<Option<Plan>, StoreError> {
        let pk = plan_pk(id);
        for _ in 0..ATTEMPTS {
            let Some(item) = self.get(&pk, "PLAN").await? else {
                return Ok(None);
            };
            // None: replaced while being read; read the new one.
            if let Some(doc) = self.read_document(&pk, &item).await? {
                return decode_plan(id, &doc).map(Some);
            }
        }
        Err(self.message(format!(
            "plan `{id}` kept changing while it was read; try again"
        )))
    }

    /// The JSON of the plan of `item`, from the item or from its chunks; `None` when the chunks
    /// it names are not all there (the plan was replaced meanwhile).
    async fn read_document(&self, pk: &str, item: &Item) -> Result<Option<String>, StoreError> {
        let f = fields(item);
        if let Some(doc) = f.opt_str("document")? {
            return Ok(Some(doc));
        }
        let generation = f.str("generation")?;
        let count = f.num("chunks")?;
        let chunks = self.chunks(pk, &generation).await?;
        if i64::try_from(chunks.len()).ok() != Some(count) {
            return Ok(None);
        }
        let mut doc = String::new();
        for chunk in &chunks {
            doc.push_str(&fields(chunk).str("data")?);
        }
        Ok(Some(doc))
    }

    /// Removes what `plan`, just written with creation time `created_ms`, replaced of the
    /// version whose item was `old`: index entries it no longer has, and the old chunks.
    pub(super) async fn remove_replaced(
        &self,
        old: &Item,
        plan: &Plan,
        created_ms: Millis,
    ) -> Result<(), StoreError> {
        let f = fields(old);
        let old_ms = f.num("created_ms")?;
        for env in plan_environments(old) {
            let still = old_ms == created_ms && plan.environments.iter().any(|e| e.name == env);
            if !still {
                let (pk, sk) = plan_index_key(&env, old_ms, &plan.id);
                self.delete(&pk, &sk).await?;
            }
        }
        if let Some(generation) = f.opt_str("generation")? {
            let pk = plan_pk(&plan.id);
            for chunk in self.chunks(&pk, &generation).await? {
                self.delete(&pk, &fields(&chunk).str("sk")?).await?;
            }
        }
        Ok(())
    }

    /// The chunk items of one generation of the plan of partition `pk`, in order.
    async fn chunks(&self, pk: &str, generation: &str) -> Result<Vec<Item>, StoreError> {
        self.query(Listing::of(pk, &chunk_prefix(generation))).await
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
}
