//! SNS for notifications: publishing one message to a topic, within a short deadline and a
//! few attempts (a notification must never hold an apply up for long).

use std::time::Duration;

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_types::SdkConfig;

use super::{AwsError, Counting, Limit};

/// Attempts per publish, the first included.
const ATTEMPTS: u32 = 3;

/// SNS in one region, as one session's identity.
#[derive(Clone, Debug)]
pub struct Sns {
    client: Client,
    limit: Limit,
}

/// One message to publish.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    pub topic_arn: &'a str,
    /// At most 100 characters (SNS refuses longer subjects).
    pub subject: &'a str,
    pub body: &'a str,
    /// String message attributes, for subscription filter policies.
    pub attributes: &'a [(&'a str, &'a str)],
    /// For FIFO topics (`.fifo`): the message group and deduplication id.
    pub group_and_dedup: Option<(&'a str, &'a str)>,
}

impl Sns {
    pub(super) fn new(
        conf: &SdkConfig,
        counting: Counting,
        region: &str,
        timeout: Duration,
        limit: Limit,
    ) -> Sns {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(300))
            .with_max_backoff(Duration::from_secs(2));
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(timeout)
            .operation_timeout(timeout * ATTEMPTS + Duration::from_secs(5))
            .build();
        let client = Client::from_conf(
            aws_sdk_sns::config::Builder::from(conf)
                .region(aws_types::region::Region::new(region.to_string()))
                .retry_config(retry)
                .timeout_config(timeouts)
                .interceptor(counting)
                .build(),
        );
        Sns { client, limit }
    }

    /// Publishes a message; the message id.
    pub async fn publish(&self, m: &Message<'_>) -> Result<String, AwsError> {
        let _permit = self.limit.acquire().await;
        let mut req = self
            .client
            .publish()
            .topic_arn(m.topic_arn)
            .subject(m.subject)
            .message(m.body);
        for (k, v) in m.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*v)
                .build()
                .map_err(|e| AwsError::Call {
                    service: "SNS",
                    operation: "Publish",
                    code: None,
                    message: e.to_string(),
                })?;
            req = req.message_attributes(*k, value);
        }
        if let Some((group, dedup)) = m.group_and_dedup {
            req = req.message_group_id(group).message_deduplication_id(dedup);
        }
        let out = req
            .send()
            .await
            .map_err(|e| AwsError::call("SNS", "Publish", e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}
