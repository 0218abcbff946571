//! AWS SDK clients for tests to set up and inspect what an endpoint holds (stacks deployed
//! outside formwork, SSM parameters, buckets), and a runner for formwork against an endpoint.

use std::path::Path;
use std::process::Command;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::SdkConfig;
use aws_types::region::Region;

use super::Run;
use super::aws::Endpoint;

/// SDK configuration for `endpoint` in `region`, as the test credentials of `endpoint.env()`.
pub fn config(endpoint: &Endpoint, region: &str) -> SdkConfig {
    SdkConfig::builder()
        .endpoint_url(&endpoint.url)
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "tests",
        )))
        .behavior_version(BehaviorVersion::latest())
        .build()
}

pub fn cfn(endpoint: &Endpoint, region: &str) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&config(endpoint, region))
}

pub fn ssm(endpoint: &Endpoint, region: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&config(endpoint, region))
}

pub fn secrets_manager(endpoint: &Endpoint, region: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&config(endpoint, region))
}

pub fn s3(endpoint: &Endpoint, region: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config(endpoint, region))
            .force_path_style(true)
            .build(),
    )
}

/// Runs an async block to completion (tests are plain `#[test]` functions).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs formwork in `dir` against `endpoint`.
pub fn formwork_on(endpoint: &Endpoint, dir: &Path, args: &[&str]) -> Run {
    formwork_on_with(endpoint, dir, &[], args)
}

/// [`formwork_on`] with the environment variables `vars`, and without the GitHub Actions
/// run's (so that what formwork links to does not depend on where the tests run).
pub fn formwork_on_with(
    endpoint: &Endpoint,
    dir: &Path,
    vars: &[(&str, &str)],
    args: &[&str],
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_formwork"));
    endpoint.configure(&mut cmd);
    cmd.envs(vars.iter().copied());
    for v in ["GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"] {
        cmd.env_remove(v);
    }
    let out = cmd
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FORMWORK_REPO")
        .env_remove("FORMWORK_DATA_DIR")
        .output()
        .expect("run formwork");
    Run::from(out)
}

/// The keys of the objects in `bucket`.
pub fn bucket_keys(endpoint: &Endpoint, region: &str, bucket: &str) -> Vec<String> {
    let s3 = s3(endpoint, region);
    block(async {
        s3.list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    })
}
