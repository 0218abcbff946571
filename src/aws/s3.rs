//! S3 uploads of templates too large to pass inline: content-addressed keys, so the same
//! template is stored once and a re-run finds it.

use aws_sdk_s3::Client;
use aws_types::SdkConfig;

use super::{AwsError, Counting, Limit};

/// S3 for one session. With a custom endpoint (`AWS_ENDPOINT_URL`) buckets are addressed by
/// path, since the endpoint's host name cannot carry a bucket name.
#[derive(Clone, Debug)]
pub struct S3 {
    client: Client,
    region: String,
    limit: Limit,
}

/// Where uploaded templates go in the artifact bucket.
pub const TEMPLATE_PREFIX: &str = "formwork/templates";

impl S3 {
    pub(super) fn new(
        conf: &SdkConfig,
        counting: Counting,
        custom_endpoint: bool,
        limit: Limit,
    ) -> S3 {
        let mut b = aws_sdk_s3::config::Builder::from(conf)
            .interceptor(counting)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            );
        if custom_endpoint {
            b = b.force_path_style(true);
        }
        S3 {
            client: Client::from_conf(b.build()),
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
            limit,
        }
    }

    /// The key a template is stored under: its SHA-256.
    pub fn template_key(sha256_hex: &str) -> String {
        format!("{TEMPLATE_PREFIX}/{sha256_hex}.template")
    }

    /// The URL CloudFormation fetches an uploaded object from (virtual-hosted style, which
    /// local endpoints also resolve against their own S3).
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region)
    }

    /// Uploads bytes under `key` (idempotent: the key names the content).
    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/x-yaml")
            .body(body.into())
            .send()
            .await
            .map_err(|e| AwsError::call("S3", "PutObject", e))?;
        Ok(())
    }
}
