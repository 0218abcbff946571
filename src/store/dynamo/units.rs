//! Recording the result of one stack of a run so that a run's stacks keep the order in which they
//! were first recorded: a new stack takes the next number of the run's counter, a known one is
//! rewritten with its number, and a race with another writer is run again.

use aws_sdk_dynamodb::types::ReturnValue;

use super::attributes::{fields, key, n};
use super::items::{run_pk, unit_item, unit_sk};
use super::requests::condition_failed;
use super::{ATTEMPTS, DynamoStore};
use crate::store::{StoreError, UnitResult};

impl DynamoStore {
    /// Writes a stack's result: in place when it was recorded before (keeping its order),
    /// else as a new item numbered from the run's counter.
    pub(super) async fn write_unit(&self, unit: &UnitResult) -> Result<(), StoreError> {
        let pk = run_pk(&unit.run_id);
        let sk = unit_sk(&unit.stack);
        for _ in 0..ATTEMPTS {
            let written = match self.get(&pk, &sk).await? {
                // Recorded before: rewritten in place, unless someone else did meanwhile.
                Some(old) => {
                    let ord = fields(&old).num("ord")?;
                    let condition = "attribute_exists(pk) AND ord = :ord";
                    self.put_if(unit_item(unit, ord), condition, &[], &[(":ord", n(ord))])
                        .await?
                }
                // New: numbered from the run's counter, unless someone else recorded it
                // meanwhile (then theirs is updated on the next try).
                None => {
                    let ord = self.next_unit_number(unit, &pk).await?;
                    self.put_if(unit_item(unit, ord), "attribute_not_exists(pk)", &[], &[])
                        .await?
                }
            };
            if written {
                return Ok(());
            }
        }
        Err(self.message(format!(
            "stack `{}` of run `{}` kept changing while it was written",
            unit.stack, unit.run_id
        )))
    }

    /// Counts one more stack in the run of `unit` (partition `pk`), and returns its number.
    async fn next_unit_number(&self, unit: &UnitResult, pk: &str) -> Result<i64, StoreError> {
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, "RUN")))
            .update_expression("ADD next_unit :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match counted {
            Ok(out) => fields(&out.attributes.unwrap_or_default()).num("next_unit"),
            Err(e) if condition_failed(&e) => Err(StoreError::Data(format!(
                "there is no run `{}`",
                unit.run_id
            ))),
            Err(e) => Err(self.sdk("UpdateItem", e)),
        }
    }
}
