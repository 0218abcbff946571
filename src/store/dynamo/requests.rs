//! The DynamoDB requests the store is made of — read, write and remove one item, write several
//! in one transaction — and the store's errors made from the SDK's.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;

use super::DynamoStore;
use super::attributes::{Item, key};
use crate::store::StoreError;

/// Whether a service error is a failed condition (of a conditional write).
pub(super) fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

/// Whether a transaction was cancelled (a condition of one of its writes failed, or it
/// conflicted with another transaction).
fn transaction_cancelled<R>(err: &SdkError<TransactWriteItemsError, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.is_transaction_canceled_exception())
}

impl DynamoStore {
    /// A failure of the store, naming its table.
    pub(super) fn message(&self, message: impl Into<String>) -> StoreError {
        StoreError::Dynamo {
            table: self.table.clone(),
            message: message.into(),
        }
    }

    /// A failed request: the operation, and the service's error code and message.
    pub(super) fn sdk<E, R>(&self, operation: &str, err: SdkError<E, R>) -> StoreError
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

    /// A request that could not be built.
    pub(super) fn build_err(&self, e: BuildError) -> StoreError {
        self.message(e.to_string())
    }

    /// The item of key (`pk`, `sk`), read strongly consistent.
    pub(super) async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
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

    /// The `RESULT` item of partition `pk`, read consistently; a future that owns what it needs.
    pub(super) fn get_owned(
        &self,
        pk: String,
    ) -> impl std::future::Future<Output = Result<Option<Item>, StoreError>> + Send + 'static {
        let get = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, "RESULT")))
            .consistent_read(true);
        let this = self.clone();
        async move {
            get.send()
                .await
                .map(|out| out.item)
                .map_err(|e| this.sdk("GetItem", e))
        }
    }

    /// Writes `item`, replacing any of its key.
    pub(super) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.sdk("PutItem", e))
    }

    /// Writes each item, several at a time: for records that each stand on their own, so no
    /// transaction is needed.
    pub(super) async fn put_each(
        &self,
        items: impl Iterator<Item = Item>,
    ) -> Result<(), StoreError> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(items.collect::<Vec<_>>())
            .map(|item| self.put(item))
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    /// Writes `item` if `condition` holds, with the `#name`s of `names` and the `:value`s of
    /// `values` in it; `false` when it did not hold.
    pub(super) async fn put_if(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, StoreError> {
        let names = (!names.is_empty()).then(|| {
            names
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        let values = (!values.is_empty()).then(|| {
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        });
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(self.sdk("PutItem", e)),
        }
    }

    /// Removes the item of key (`pk`, `sk`), if any.
    pub(super) async fn delete(&self, pk: &str, sk: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .map(drop)
            .map_err(|e| self.sdk("DeleteItem", e))
    }

    /// Makes `items` all or none; `false` when the transaction was cancelled.
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
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

    /// A write of `item` in a transaction, made only if `condition` holds.
    pub(super) fn tx_put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .build()
            .map_err(|e| self.build_err(e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}
