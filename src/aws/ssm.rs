//! SSM Parameter Store reads: parameters by name, ten per call, decrypted. SecureString values
//! are marked secret so that nothing prints them.

use std::collections::BTreeMap;

use aws_sdk_ssm::Client;

use super::{AwsError, Limit};

/// GetParameters takes at most ten names per call (SSM API reference).
const BATCH: usize = 10;

/// A parameter's value and whether it must never be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SsmValue {
    pub value: String,
    /// A SecureString.
    pub secret: bool,
}

impl std::fmt::Debug for SsmValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            write!(f, "SsmValue(****)")
        } else {
            write!(f, "SsmValue({:?})", self.value)
        }
    }
}

/// What a batch of reads found.
#[derive(Clone, Debug, Default)]
pub struct SsmValues {
    pub found: BTreeMap<String, SsmValue>,
    /// Names that do not exist.
    pub missing: Vec<String>,
}

/// SSM for one session.
#[derive(Clone, Debug)]
pub struct Ssm {
    client: Client,
    limit: Limit,
}

impl Ssm {
    pub fn new(client: Client, limit: Limit) -> Ssm {
        Ssm { client, limit }
    }

    /// Writes a String parameter (overwriting it).
    pub async fn put(&self, name: &str, value: &str, description: &str) -> Result<(), AwsError> {
        let _permit = self.limit.acquire().await;
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .description(description)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| AwsError::call("SSM", "PutParameter", e))?;
        Ok(())
    }

    /// Reads parameters by name, decrypting SecureStrings, in batches of ten.
    pub async fn get(&self, names: &[String]) -> Result<SsmValues, AwsError> {
        let mut out = SsmValues::default();
        for batch in names.chunks(BATCH) {
            let _permit = self.limit.acquire().await;
            let resp = self
                .client
                .get_parameters()
                .set_names(Some(batch.to_vec()))
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| AwsError::call("SSM", "GetParameters", e))?;
            for p in resp.parameters() {
                let (Some(name), Some(value)) = (p.name(), p.value()) else {
                    continue;
                };
                let secret = p.r#type().is_some_and(|t| t.as_str() == "SecureString");
                out.found.insert(
                    name.to_string(),
                    SsmValue {
                        value: value.to_string(),
                        secret,
                    },
                );
            }
            out.missing
                .extend(resp.invalid_parameters().iter().map(|s| s.to_string()));
        }
        Ok(out)
    }
}
