//! Links to the AWS CloudFormation console for a stack and a change set, from their ARNs (the
//! partition decides the console's domain; the region is in the ARN).

/// The console's URL for change set `change_set` (an ARN) of stack `stack` (an ARN), and for
/// the stack; `None` when the ARNs are not CloudFormation ARNs formwork can read.
pub fn change_set_links(stack: &str, change_set: &str) -> Option<(String, String)> {
    let (partition, region) = partition_and_region(change_set)?;
    let base = console_base(partition, region)?;
    let stack_q = encode(stack);
    Some((
        format!(
            "{base}#/stacks/changesets/changes?stackId={stack_q}&changeSetId={}",
            encode(change_set)
        ),
        format!("{base}#/stacks/stackinfo?stackId={stack_q}"),
    ))
}

/// `arn:PARTITION:cloudformation:REGION:…`
fn partition_and_region(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(5, ':');
    let (Some("arn"), Some(partition), Some("cloudformation"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let plausible = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    plausible.then_some((partition, region))
}

/// The CloudFormation console of a region, by partition.
fn console_base(partition: &str, region: &str) -> Option<String> {
    let domain = match partition {
        "aws" => format!("{region}.console.aws.amazon.com"),
        "aws-cn" => "console.amazonaws.cn".to_string(),
        "aws-us-gov" => "console.amazonaws-us-gov.com".to_string(),
        _ => return None,
    };
    Some(format!(
        "https://{domain}/cloudformation/home?region={region}"
    ))
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_the_region_and_encode_the_arns() {
        let stack = "arn:aws:cloudformation:eu-west-1:111111111111:stack/staging-db/1a2b";
        let cs = "arn:aws:cloudformation:eu-west-1:111111111111:changeSet/formwork-abc/3c4d";
        let (c, s) = change_set_links(stack, cs).unwrap();
        assert_eq!(
            c,
            "https://eu-west-1.console.aws.amazon.com/cloudformation/home?region=eu-west-1#/stacks/changesets/changes?stackId=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A111111111111%3Astack%2Fstaging-db%2F1a2b&changeSetId=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A111111111111%3AchangeSet%2Fformwork-abc%2F3c4d"
        );
        assert!(s.ends_with("#/stacks/stackinfo?stackId=arn%3Aaws%3Acloudformation%3Aeu-west-1%3A111111111111%3Astack%2Fstaging-db%2F1a2b"));
        let cn = "arn:aws-cn:cloudformation:cn-north-1:1:changeSet/x/y";
        assert!(
            change_set_links(stack, cn)
                .unwrap()
                .0
                .starts_with("https://console.amazonaws.cn/cloudformation/home?region=cn-north-1#")
        );
        assert_eq!(change_set_links(stack, "not-an-arn"), None);
        assert_eq!(
            change_set_links(stack, "arn:aws:cloudformation:<x>:1:changeSet/a/b"),
            None
        );
    }
}
