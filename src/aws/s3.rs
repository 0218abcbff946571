//! S3 for templates: uploads of templates too large to pass inline (content-addressed keys, so
//! the same template is stored once and a re-run finds it), and reading a template that a
//! pipeline gives by S3 URL, to show what it changes.

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
        (counting, partition): (
            Counting,
            aws_smithy_runtime::client::retries::RetryPartition,
        ),
        custom_endpoint: bool,
        limit: Limit,
    ) -> S3 {
        let mut b = aws_sdk_s3::config::Builder::from(conf)
            .interceptor(counting)
            .retry_partition(partition)
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
        object_url(bucket, &self.region, key)
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

impl S3 {
    /// The object's bytes; `None` when there is no such object (or bucket).
    pub async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let _permit = self.limit.acquire().await;
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let missing = e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
                if missing {
                    return Ok(None);
                }
                return Err(AwsError::call("S3", "GetObject", e));
            }
        };
        let bytes = out.body.collect().await.map_err(|e| AwsError::Call {
            service: "S3",
            operation: "GetObject",
            code: None,
            message: e.to_string(),
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}

/// The URL CloudFormation fetches object `key` of `bucket` in `region` from.
pub fn object_url(bucket: &str, region: &str, key: &str) -> String {
    format!("https://{bucket}.s3.{region}.amazonaws.com/{key}")
}

/// The bucket and key an S3 URL names: `s3://BUCKET/KEY`, virtual-hosted
/// (`https://BUCKET.s3[.REGION|-REGION].amazonaws.com/KEY`) or path style
/// (`https://s3[.REGION|-REGION].amazonaws.com/BUCKET/KEY`). Other URLs: `None`.
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let url = url.split(['?', '#']).next()?;
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/')?;
        return (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.into(), key.into()));
    }
    let rest = url.strip_prefix("https://")?;
    let (host, path) = rest.split_once('/')?;
    let host = host.strip_suffix(".amazonaws.com")?;
    let is_s3 = |h: &str| h == "s3" || h.starts_with("s3.") || h.starts_with("s3-");
    if is_s3(host) {
        let (bucket, key) = path.split_once('/')?;
        return (!bucket.is_empty() && !key.is_empty()).then(|| (bucket.into(), key.into()));
    }
    // Virtual-hosted: the bucket is everything before the `.s3` label.
    let i = host
        .find(".s3.")
        .or_else(|| host.find(".s3-"))
        .or_else(|| host.strip_suffix(".s3").map(|b| b.len()))?;
    let bucket = &host[..i];
    (!bucket.is_empty() && !path.is_empty()).then(|| (bucket.into(), path.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_in_every_form() {
        let bk = |b: &str, k: &str| Some((b.to_string(), k.to_string()));
        assert_eq!(
            parse_s3_url("s3://tpl/1.2/vpc.template"),
            bk("tpl", "1.2/vpc.template")
        );
        assert_eq!(
            parse_s3_url("https://tpl.s3.amazonaws.com/v3/1-1-vpc.gen.template"),
            bk("tpl", "v3/1-1-vpc.gen.template")
        );
        assert_eq!(
            parse_s3_url("https://my.tpl.s3.eu-west-1.amazonaws.com/a/b?versionId=1"),
            bk("my.tpl", "a/b")
        );
        assert_eq!(
            parse_s3_url("https://tpl.s3-eu-west-1.amazonaws.com/a"),
            bk("tpl", "a")
        );
        assert_eq!(
            parse_s3_url("https://s3.eu-west-1.amazonaws.com/tpl/a/b"),
            bk("tpl", "a/b")
        );
        assert_eq!(
            parse_s3_url("https://s3.amazonaws.com/tpl/a"),
            bk("tpl", "a")
        );
        for other in [
            "https://example.com/t.yml",
            "https://s3.amazonaws.com/tpl",
            "s3://tpl",
            "http://tpl.s3.amazonaws.com/a",
        ] {
            assert_eq!(parse_s3_url(other), None, "{other}");
        }
    }
}
