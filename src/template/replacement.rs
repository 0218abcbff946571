//! Whether changing a property replaces a resource, predicted from the CloudFormation registry
//! schema of its type, for plans made without a change set (and for changes a change set does
//! not explain).
//!
//! The data is `data/resource-schemas.json`, made by `scripts/extract-resource-schemas` from the
//! registry schemas that cfn-lint ships (see [`SOURCE`]). For each resource type it lists three
//! sets of property paths:
//!
//! - `createOnlyProperties`: changing one always replaces the resource;
//! - `conditionalCreateOnlyProperties`: changing one may replace it, depending on the values;
//! - `writeOnlyProperties`: values CloudFormation takes but never returns.
//!
//! # Property paths
//!
//! Paths passed in are written as in change set details: property names joined by `.`, list
//! indices in brackets (`Tags[0].Value`, `VpcConfiguration.SubnetIds[1]`). A name that itself
//! contains `.`, `[` or `]` is written as a quoted bracket segment (`Variables["a.b"]`). A
//! bracket holding anything else (`[0]`, `[*]`) is an index. In the data, a segment `*` matches
//! any index or name; other data segments match names only.
//!
//! A path *touches* a listed property when one is a prefix of the other: the changed value is
//! the listed property, lies inside it (`VpcEncryptionControl.Mode` inside create-only
//! `VpcEncryptionControl`), or contains it (an added or replaced `VpcConfiguration` containing
//! create-only `VpcConfiguration.SubnetIds`). The last case is a conservative guess: a changed
//! container may leave the create-only part as it was.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use serde::Deserialize;

use super::change::{Replacement, RequiresRecreation};

/// Where the replacement data comes from, for display next to predictions.
pub const SOURCE: &str = "cfn-lint 1.58.0 (PyPI), CloudFormation registry schemas for us-east-1";

/// The data file, as generated.
const DATA: &str = include_str!("../../data/resource-schemas.json");

/// The data file's header.
#[derive(Deserialize)]
struct Header {
    source: String,
    license: String,
}

/// One type's entry in the data file.
#[derive(Deserialize)]
struct RawType {
    #[serde(default, rename = "createOnlyProperties")]
    create_only: Vec<String>,
    #[serde(default, rename = "conditionalCreateOnlyProperties")]
    conditional: Vec<String>,
    #[serde(default, rename = "writeOnlyProperties")]
    write_only: Vec<String>,
}

/// One segment of a path in the data: a name, or `*` for any segment.
type Pattern = Vec<Option<String>>;

struct TypeInfo {
    create_only: Vec<Pattern>,
    conditional: Vec<Pattern>,
    write_only: Vec<Pattern>,
}

/// The header, read from the start of the data file.
static HEADER: LazyLock<Header> = LazyLock::new(|| {
    let start = DATA
        .find(':')
        .expect("the data file starts with its header")
        + 1;
    let header = Header::deserialize(&mut serde_json::Deserializer::from_str(&DATA[start..]))
        .expect("data/resource-schemas.json is valid (checked by tests)");
    debug_assert_eq!(header.source, SOURCE);
    header
});

/// The data of one resource type, read from the data file the first time it is asked for and
/// kept: reading all of the file's types up front (over 1,800) costs more than a whole
/// `formwork affected` that needs a handful. The file has one type a line, `"Type":{…},`.
fn type_info(resource_type: &str) -> Option<Arc<TypeInfo>> {
    static READ: LazyLock<Mutex<HashMap<String, Option<Arc<TypeInfo>>>>> =
        LazyLock::new(Mutex::default);
    if let Some(known) = READ
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(resource_type)
    {
        return known.clone();
    }
    let info = read_type(resource_type).map(Arc::new);
    READ.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(resource_type.to_string(), info.clone());
    info
}

/// Reads the line of `resource_type` from the data file.
fn read_type(resource_type: &str) -> Option<TypeInfo> {
    let key = format!("\n{}:", serde_json::to_string(resource_type).ok()?);
    let start = DATA.find(&key)? + key.len();
    let raw = RawType::deserialize(&mut serde_json::Deserializer::from_str(&DATA[start..])).ok()?;
    let patterns = |paths: Vec<String>| -> Vec<Pattern> {
        paths
            .iter()
            .map(|p| {
                p.split('.')
                    .map(|s| (s != "*").then(|| s.to_string()))
                    .collect()
            })
            .collect()
    };
    Some(TypeInfo {
        create_only: patterns(raw.create_only),
        conditional: patterns(raw.conditional),
        write_only: patterns(raw.write_only),
    })
}

/// The licence of the replacement data, as its source states it.
pub fn license() -> &'static str {
    &HEADER.license
}

/// Whether the data knows a resource type.
pub fn is_known_type(resource_type: &str) -> bool {
    type_info(resource_type).is_some()
}

/// One segment of a property path passed in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Name(String),
    Index,
}

/// Splits `Tags[0].Value` into `Tags`, an index, `Value`. Lenient: a path that does not follow
/// the form is read as far as it makes sense (an unclosed bracket ends the path).
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut name = String::new();
    let mut chars = path.chars().peekable();
    let flush = |name: &mut String, out: &mut Vec<Segment>| {
        if !name.is_empty() {
            out.push(Segment::Name(std::mem::take(name)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut name, &mut out),
            '[' => {
                flush(&mut name, &mut out);
                if chars.peek() == Some(&'"') {
                    // A quoted name: JSON string escapes, up to the closing `"]`.
                    let mut quoted = String::from('"');
                    chars.next();
                    let mut escaped = false;
                    for c in chars.by_ref() {
                        quoted.push(c);
                        if escaped {
                            escaped = false;
                        } else if c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            break;
                        }
                    }
                    if chars.peek() == Some(&']') {
                        chars.next();
                    }
                    let text = serde_json::from_str::<String>(&quoted)
                        .unwrap_or_else(|_| quoted.trim_matches('"').to_string());
                    out.push(Segment::Name(text));
                } else {
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                    }
                    out.push(Segment::Index);
                }
            }
            c => name.push(c),
        }
    }
    flush(&mut name, &mut out);
    out
}

/// Whether the path and the pattern agree on their common length (one is a prefix of the other).
fn touches(path: &[Segment], pattern: &Pattern) -> bool {
    path.iter().zip(pattern).all(|(s, p)| match (s, p) {
        (_, None) => true,
        (Segment::Name(n), Some(p)) => n == p,
        (Segment::Index, Some(_)) => false,
    })
}

/// Whether the path is the pattern or lies inside it.
fn within(path: &[Segment], pattern: &Pattern) -> bool {
    path.len() >= pattern.len() && touches(path, pattern)
}

/// Whether changing `property_path` of a resource of `resource_type` replaces it: `None` when
/// the type is not in the data; `Always` when the path touches a create-only property (see the
/// module documentation), `Conditionally` when it touches a conditionally create-only one,
/// `Never` otherwise.
pub fn requires_recreation(resource_type: &str, property_path: &str) -> Option<RequiresRecreation> {
    let info = type_info(resource_type)?;
    let path = segments(property_path);
    Some(if info.create_only.iter().any(|p| touches(&path, p)) {
        RequiresRecreation::Always
    } else if info.conditional.iter().any(|p| touches(&path, p)) {
        RequiresRecreation::Conditionally
    } else {
        RequiresRecreation::Never
    })
}

/// Whether changing all of `changed_paths` replaces the resource: `True` when any path always
/// requires recreation, `Conditional` when any may, `False` when none does; `Unknown` when the
/// type is not in the data or no path is given.
pub fn replacement(resource_type: &str, changed_paths: &[String]) -> Replacement {
    if changed_paths.is_empty() {
        return Replacement::Unknown;
    }
    let strongest = changed_paths
        .iter()
        .map(|p| requires_recreation(resource_type, p))
        .try_fold(RequiresRecreation::Never, |acc, r| r.map(|r| acc.max(r)));
    match strongest {
        None => Replacement::Unknown,
        Some(RequiresRecreation::Always) => Replacement::True,
        Some(RequiresRecreation::Conditionally) => Replacement::Conditional,
        Some(RequiresRecreation::Never) => Replacement::False,
    }
}

/// Whether `path` is, or lies inside, a write-only property of the type: a value CloudFormation
/// accepts but never reports back. False for types not in the data.
pub fn is_write_only(resource_type: &str, path: &str) -> bool {
    let Some(info) = type_info(resource_type) else {
        return false;
    };
    let path = segments(path);
    info.write_only.iter().any(|p| within(&path, p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequiresRecreation::*;

    /// The whole data file, as generated.
    #[derive(Deserialize)]
    struct DataFile {
        header: Header,
        resource_types: HashMap<String, RawType>,
    }

    #[test]
    fn data_parses_and_names_its_source() {
        let file: DataFile = serde_json::from_str(DATA).unwrap();
        assert_eq!(file.header.source, SOURCE);
        assert!(file.resource_types.len() > 1000);
        // Every type is found on its own line, as read one at a time.
        for name in file.resource_types.keys() {
            assert!(read_type(name).is_some(), "{name}");
        }
        assert_eq!(license(), "MIT-0");
        assert!(is_known_type("AWS::S3::Bucket"));
        assert!(!is_known_type("Custom::Thing"));
    }

    #[test]
    fn reads_paths() {
        use Segment::*;
        assert_eq!(
            segments("Tags[0].Value"),
            [Name("Tags".into()), Index, Name("Value".into())]
        );
        assert_eq!(
            segments(r#"Environment.Variables["a.b"].x"#),
            [
                Name("Environment".into()),
                Name("Variables".into()),
                Name("a.b".into()),
                Name("x".into())
            ]
        );
        assert_eq!(segments("A[*][2]"), [Name("A".into()), Index, Index]);
        assert_eq!(segments(""), []);
    }

    #[test]
    fn create_only_properties_always_replace() {
        assert_eq!(
            requires_recreation("AWS::EC2::VPC", "CidrBlock"),
            Some(Always)
        );
        assert_eq!(
            requires_recreation("AWS::S3::Bucket", "BucketName"),
            Some(Always)
        );
        assert_eq!(
            requires_recreation("AWS::EC2::SecurityGroup", "GroupDescription"),
            Some(Always)
        );
        // Inside a create-only property.
        assert_eq!(
            requires_recreation("AWS::EC2::VPC", "VpcEncryptionControl.Mode"),
            Some(Always)
        );
    }

    #[test]
    fn other_properties_never_replace() {
        assert_eq!(requires_recreation("AWS::S3::Bucket", "Tags"), Some(Never));
        assert_eq!(
            requires_recreation("AWS::S3::Bucket", "Tags[0].Value"),
            Some(Never)
        );
        assert_eq!(
            requires_recreation("AWS::EC2::SecurityGroup", "SecurityGroupIngress"),
            Some(Never)
        );
        assert_eq!(
            requires_recreation("AWS::EC2::SecurityGroup", "SecurityGroupIngress[2].CidrIp"),
            Some(Never)
        );
        assert_eq!(
            requires_recreation("AWS::EC2::VPC", "EnableDnsSupport"),
            Some(Never)
        );
    }

    #[test]
    fn conditional_create_only_properties() {
        assert_eq!(
            requires_recreation("AWS::RDS::DBInstance", "Engine"),
            Some(Conditionally)
        );
        assert_eq!(
            requires_recreation("AWS::RDS::DBInstance", "MultiAZ"),
            Some(Conditionally)
        );
        assert_eq!(
            requires_recreation("AWS::RDS::DBInstance", "DBName"),
            Some(Always)
        );
        assert_eq!(
            requires_recreation("AWS::RDS::DBInstance", "AllocatedStorage"),
            Some(Never)
        );
        assert_eq!(
            requires_recreation("AWS::EC2::VPC", "InstanceTenancy"),
            Some(Conditionally)
        );
    }

    #[test]
    fn a_changed_container_of_a_create_only_property_replaces() {
        let eks = "AWS::EKS::Cluster";
        assert_eq!(
            requires_recreation(eks, "KubernetesNetworkConfig.IpFamily"),
            Some(Always)
        );
        assert_eq!(
            requires_recreation(eks, "KubernetesNetworkConfig"),
            Some(Always)
        );
        assert_eq!(
            requires_recreation(eks, "KubernetesNetworkConfig.ElasticLoadBalancing"),
            Some(Never)
        );
    }

    #[test]
    fn write_only_properties() {
        let sg = "AWS::EC2::SecurityGroup";
        assert!(is_write_only(
            sg,
            "SecurityGroupIngress[3].SourceSecurityGroupName"
        ));
        assert!(!is_write_only(sg, "SecurityGroupIngress[3].CidrIp"));
        // The container of a write-only property is not itself write-only.
        assert!(!is_write_only(sg, "SecurityGroupIngress"));
        assert!(is_write_only("AWS::RDS::DBInstance", "MasterUserPassword"));
        assert!(is_write_only("AWS::Lambda::Function", "Code.ZipFile"));
        assert!(!is_write_only("Custom::Thing", "Anything"));
    }

    #[test]
    fn unknown_types() {
        assert_eq!(requires_recreation("Custom::Thing", "Name"), None);
        assert_eq!(
            replacement("Custom::Thing", &["Name".to_string()]),
            Replacement::Unknown
        );
    }

    #[test]
    fn strongest_over_all_paths() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            replacement("AWS::S3::Bucket", &p(&["Tags[0].Value", "BucketName"])),
            Replacement::True
        );
        assert_eq!(
            replacement(
                "AWS::S3::Bucket",
                &p(&["Tags[0].Value", "VersioningConfiguration"])
            ),
            Replacement::False
        );
        assert_eq!(
            replacement("AWS::RDS::DBInstance", &p(&["AllocatedStorage", "Engine"])),
            Replacement::Conditional
        );
        assert_eq!(replacement("AWS::S3::Bucket", &[]), Replacement::Unknown);
    }
}
