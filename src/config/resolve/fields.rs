//! The formats of an environment's own fields: account id, region, deployment role ARN and
//! artifact bucket name.

use std::sync::LazyLock;

use regex::Regex;

use crate::config::load::Environment;
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::Spanned;

static REGION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z]{2}(-[a-z]+)+-\d+$").expect("valid regex"));
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$").expect("valid regex")
});
static BUCKET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$").expect("valid regex"));

/// Reports a region name that is not one; `true` when it is well formed.
pub(super) fn check_region(
    file: &std::sync::Arc<str>,
    region: &Spanned<String>,
    d: &mut Diagnostics,
) -> bool {
    if REGION.is_match(region) {
        return true;
    }
    d.push(
        Diagnostic::error(format!("`{}` is not an AWS region name", region.value))
            .at(Loc::new(file, region.span))
            .help("write a region such as `us-east-1` or `ap-southeast-2`"),
    );
    false
}

/// Formats of environment fields. Sources: AWS account ids are 12 digits; region names as in
/// the AWS General Reference; IAM role ARNs; S3 bucket naming rules.
pub(super) fn env_field_checks(env: &Environment, d: &mut Diagnostics) {
    let f = &env.file;
    let def = &env.def;
    if !(def.account.len() == 12 && def.account.chars().all(|c| c.is_ascii_digit())) {
        d.push(
            Diagnostic::error(format!("`{}` is not an AWS account id", def.account.value))
                .at(Loc::new(f, def.account.span))
                .help("an account id is 12 digits; quote it so YAML keeps leading zeros: account: \"012345678901\""),
        );
    }
    check_region(f, &def.region, d);
    if let Some(role) = &def.role_arn {
        match ROLE_ARN.captures(role) {
            None => d.push(
                Diagnostic::error(format!("`{}` is not an IAM role ARN", role.value))
                    .at(Loc::new(f, role.span))
                    .help("write arn:aws:iam::<account>:role/<name>"),
            ),
            Some(c) if c[1] != *def.account.value => d.push(
                Diagnostic::warning(format!(
                    "role {} is in account {}, the environment in account {}",
                    role.value, &c[1], def.account.value
                ))
                .at(Loc::new(f, role.span))
                .help("deployment roles usually live in the account they deploy to"),
            ),
            Some(_) => {}
        }
    }
    if let Some(b) = &def.artifact_bucket
        && (!BUCKET.is_match(b) || b.contains(".."))
    {
        d.push(
            Diagnostic::error(format!("`{}` is not a valid S3 bucket name", b.value))
                .at(Loc::new(f, b.span))
                .help("bucket names are 3–63 lower-case letters, digits, dots and hyphens"),
        );
    }
}
