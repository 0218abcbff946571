//! Resources a stack adopts from outside CloudFormation (`import:`), as the config asks: by
//! logical id, the resource type the template gives and the properties identifying the
//! existing resource.

use std::collections::BTreeMap;

use serde::Serialize;

/// One resource to import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Import {
    /// Its type, from the template (`AWS::S3::Bucket`).
    pub resource_type: String,
    /// The identifier properties and their values (`BucketName`: `shop-logs`).
    pub identifier: BTreeMap<String, String>,
}
