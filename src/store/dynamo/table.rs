//! The table itself: which names DynamoDB accepts, and making sure the table exists with the
//! store's keys — created (on-demand billing, time to live on) when missing, and active.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

use super::DynamoStore;
use super::items::TTL_ATTRIBUTE;
use crate::store::StoreError;

/// How long [`DynamoStore::ensure_table`] waits for a new table to become active.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Whether `name` is a valid DynamoDB table name: 3 to 255 of `a-z A-Z 0-9 _ - .`.
pub fn is_valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl DynamoStore {
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
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| self.build_err(e))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| self.build_err(e))
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
                self.enable_time_to_live().await
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

    /// Has DynamoDB remove expired locks (by [`TTL_ATTRIBUTE`]); only warns when it cannot.
    async fn enable_time_to_live(&self) -> Result<(), StoreError> {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| self.build_err(e))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(is_valid_table_name("formwork-state"));
        assert!(is_valid_table_name("a.b_c"));
        assert!(!is_valid_table_name("ab"));
        assert!(!is_valid_table_name("bad name"));
        assert!(!is_valid_table_name(""));
    }
}
