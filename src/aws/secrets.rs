//! AWS Secrets Manager reads for `${secretsmanager:NAME[:KEY]}`: a secret's string (the
//! current version), or one key of it read as a JSON object. Every value read is secret; each
//! secret is read once per environment plan ([`SecretCache`]).

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use super::{AwsError, Limit};

/// Secrets Manager for one session.
#[derive(Clone, Debug)]
pub struct SecretsManager {
    client: Client,
    limit: Limit,
}

impl SecretsManager {
    pub fn new(client: Client, limit: Limit) -> SecretsManager {
        SecretsManager { client, limit }
    }

    /// The string of secret `name` (its `AWSCURRENT` version); `None` when there is no such
    /// secret.
    pub async fn get(&self, name: &str) -> Result<Option<String>, AwsError> {
        let _permit = self.limit.acquire().await;
        match self.client.get_secret_value().secret_id(name).send().await {
            Ok(out) => match out.secret_string() {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(AwsError::Call {
                    service: "SecretsManager",
                    operation: "GetSecretValue",
                    code: None,
                    message: format!(
                        "secret {name} holds binary data: only secrets with a string can be parameter values"
                    ),
                }),
            },
            Err(e) => {
                let e = AwsError::call("SecretsManager", "GetSecretValue", e);
                match e.code_and_message() {
                    Some((Some("ResourceNotFoundException"), _)) => Ok(None),
                    _ => Err(e),
                }
            }
        }
    }
}

/// The secrets read for one environment's plan, each read once.
#[derive(Debug)]
pub struct SecretCache {
    sm: SecretsManager,
    read: tokio::sync::Mutex<HashMap<String, Result<Option<String>, String>>>,
}

impl SecretCache {
    pub fn new(sm: SecretsManager) -> SecretCache {
        SecretCache {
            sm,
            read: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The value of `${secretsmanager:name[:key]}`, or what is wrong (the secret or its key is
    /// missing, the secret is not a JSON object, the call failed).
    pub async fn value(&self, name: &str, key: Option<&str>) -> Result<String, String> {
        let whole = {
            let mut read = self.read.lock().await;
            if !read.contains_key(name) {
                let got = self.sm.get(name).await.map_err(|e| e.to_string());
                read.insert(name.to_string(), got);
            }
            read.get(name).cloned().unwrap_or(Ok(None))?
        };
        let Some(whole) = whole else {
            return Err(format!(
                "there is no secret `{name}` in Secrets Manager (in the environment's account and region)"
            ));
        };
        let Some(key) = key else {
            return Ok(whole);
        };
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&whole)
            .map_err(|_| {
                format!("secret `{name}` is not a JSON object, so it has no key `{key}`")
            })?;
        match object.get(key) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                Ok(v.to_string())
            }
            Some(_) => Err(format!(
                "key `{key}` of secret `{name}` is not a string, number or boolean"
            )),
            None => Err(format!("secret `{name}` has no key `{key}`")),
        }
    }
}
