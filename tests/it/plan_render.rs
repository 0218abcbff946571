//! Rendering plans: the terminal text and the pull-request Markdown of realistic plans
//! (snapshots), secrets staying masked, the JSON form documented in docs/plan-json.md, and the
//! splitting of long Markdown into GitHub comments (examples and properties).

use formwork::plan::model::*;
use formwork::render::plan_markdown::{
    GITHUB_COMMENT_LIMIT, Split, check_well_formed, check_well_formed_within, plan_markdown,
    split_markdown,
};
use formwork::render::plan_text::plan_text;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Building plans.

fn rev(rev: &str, commit: &str) -> RevisionInfo {
    RevisionInfo {
        rev: rev.into(),
        commit: commit.into(),
    }
}

fn unit(stack: &str, env: &str, action: Action) -> UnitPlan {
    UnitPlan {
        region: None,
        depends_on: Vec::new(),
        changing_outputs: None,
        unchanged_by: None,
        fingerprint: None,
        stamp: None,
        last_event: None,
        stack: stack.into(),
        stack_name: format!("{env}-{stack}"),
        action,
        reasons: Vec::new(),
        config_hash: format!("sha256:{stack}{env}"),
        change_set: None,
        stack_status: None,
        last_updated: None,
        resources: Vec::new(),
        parameters: Vec::new(),
        security: Vec::new(),
        template_diff: None,
        inputs: Vec::new(),
        message: None,
        policy: Vec::new(),
        options: Vec::new(),
        hooks: Vec::new(),
    }
}

fn change_set(env: &str, stack: &str, kind: &str) -> Option<ChangeSetRef> {
    Some(ChangeSetRef {
        name: format!("formwork-0b6f2d1-{stack}"),
        id: format!(
            "arn:aws:cloudformation:us-east-1:111111111111:changeSet/formwork-0b6f2d1-{stack}/1"
        ),
        stack_id: Some(format!(
            "arn:aws:cloudformation:us-east-1:111111111111:stack/{env}-{stack}/2"
        )),
        change_set_type: kind.into(),
    })
}

fn resource(logical_id: &str, ty: &str, action: ResourceAction) -> ResourceChange {
    ResourceChange {
        logical_id: logical_id.into(),
        physical_id: None,
        resource_type: ty.into(),
        action,
        replacement: Replacement::Unknown,
        replacement_source: ReplacementSource::Cloudformation,
        scope: Vec::new(),
        details: Vec::new(),
        condition: None,
    }
}

fn property(name: &str, recreation: RequiresRecreation, before: &str, after: &str) -> ChangeDetail {
    ChangeDetail {
        attribute: "Properties".into(),
        name: Some(name.into()),
        requires_recreation: Some(recreation),
        evaluation: Some("Static".into()),
        change_source: Some("DirectModification".into()),
        causing_entity: None,
        before: Some(before.into()),
        after: Some(after.into()),
    }
}

fn param(name: &str, before: Option<&str>, after: Option<&str>) -> ParameterChange {
    ParameterChange {
        name: name.into(),
        before: before.map(String::from),
        after: after.map(String::from),
        secret: false,
        known_after_apply: false,
        expression: None,
    }
}

const NETWORK_DIFF: &str = "\
--- deployed staging-network
+++ templates/network.yml
@@ -1,9 +1,9 @@
 AWSTemplateFormatVersion: '2010-09-09'
-Description: Shop network
+Description: Shop network (see ```docs/network.md```)
 Resources:
   Vpc:
     Type: AWS::EC2::VPC
     Properties:
-      CidrBlock: 10.0.0.0/16
+      CidrBlock: 10.1.0.0/16
       EnableDnsSupport: true
@@ -30,3 +30,12 @@
       GroupDescription: bastion
       VpcId: !Ref Vpc
+  BastionIngress:
+    Type: AWS::EC2::SecurityGroupIngress
+    Properties:
+      GroupId: !Ref BastionSg
+      IpProtocol: tcp
+      FromPort: 22
+      ToPort: 22
+      CidrIp: 0.0.0.0/0
";

/// Staging: an update with a replacement, broadened access and a template diff; a new stack;
/// a stack with no changes; a pending dependant; a blocked stack; a removed stack. Production:
/// a parameter change and a failed stack.
fn realistic_plan() -> Plan {
    let s = "staging";

    let mut network = unit("network", s, Action::Update);
    network.policy = vec![
        Finding {
            rule: "no_ssh_or_rdp_from_anywhere".into(),
            file: "policies/network.guard".into(),
            severity: RuleSeverity::Block,
            resource: Some("Bastion".into()),
            path: Some("/Resources/Bastion/Properties/SecurityGroupIngress/0/CidrIp".into()),
            template: "pipelines/shop/templates/network.yml".into(),
            line: Some(41),
            column: Some(19),
            message: "SSH (22) and RDP (3389) must not be open to 0.0.0.0/0 or ::/0".into(),
            overridden_by: None,
        },
        Finding {
            rule: "vpc_flow_logs | on".into(),
            file: "policies/logging.guard".into(),
            severity: RuleSeverity::Warn,
            resource: None,
            path: None,
            template: "pipelines/shop/templates/network.yml".into(),
            line: None,
            column: None,
            message: "Turn on *flow logs* for <every> VPC".into(),
            overridden_by: None,
        },
    ];
    network.change_set = change_set(s, "network", "UPDATE");
    network.stack_status = Some("UPDATE_COMPLETE".into());
    network.last_updated = Some("2024-04-28T09:12:44Z".into());
    network.reasons = vec![Reason::Template {
        before: "templates/network.yml".into(),
        after: "templates/network.yml".into(),
    }];
    let mut vpc = resource("Vpc", "AWS::EC2::VPC", ResourceAction::Modify);
    vpc.physical_id = Some("vpc-0abc".into());
    vpc.replacement = Replacement::True;
    vpc.scope = vec!["Properties".into()];
    vpc.details = vec![property(
        "CidrBlock",
        RequiresRecreation::Always,
        "10.0.0.0/16",
        "10.1.0.0/16",
    )];
    let mut subnet = resource("PublicSubnet", "AWS::EC2::Subnet", ResourceAction::Modify);
    subnet.replacement = Replacement::Conditional;
    subnet.replacement_source = ReplacementSource::Predicted;
    subnet.scope = vec!["Properties".into()];
    subnet.details = vec![ChangeDetail {
        attribute: "Properties".into(),
        name: Some("VpcId".into()),
        requires_recreation: Some(RequiresRecreation::Conditionally),
        evaluation: Some("Dynamic".into()),
        change_source: Some("ResourceReference".into()),
        causing_entity: Some("Vpc".into()),
        before: None,
        after: None,
    }];
    let ingress = resource(
        "BastionIngress",
        "AWS::EC2::SecurityGroupIngress",
        ResourceAction::Add,
    );
    let mut role = resource("FlowLogRole", "AWS::IAM::Role", ResourceAction::Modify);
    role.replacement = Replacement::False;
    role.scope = vec!["Properties".into(), "Tags".into()];
    role.details = vec![
        property(
            "Policies[0].PolicyDocument",
            RequiresRecreation::Never,
            "{}",
            "{}",
        ),
        ChangeDetail {
            attribute: "Tags".into(),
            name: None,
            requires_recreation: Some(RequiresRecreation::Never),
            evaluation: Some("Static".into()),
            change_source: None,
            causing_entity: None,
            before: None,
            after: None,
        },
    ];
    network.resources = vec![vpc, subnet, ingress, role];
    network.security = vec![
        SecurityChange {
            resource: "BastionIngress".into(),
            resource_type: "AWS::EC2::SecurityGroupIngress".into(),
            kind: SecurityKind::SecurityGroupRule,
            change: SecurityChangeKind::Added,
            description: "ingress tcp 22 from 0.0.0.0/0".into(),
            broadens: true,
        },
        SecurityChange {
            resource: "FlowLogRole".into(),
            resource_type: "AWS::IAM::Role".into(),
            kind: SecurityKind::IamStatement,
            change: SecurityChangeKind::Added,
            description: "Allow logs:PutLogEvents on arn:aws:logs:us-east-1:111111111111:log-group:/vpc/flow|*".into(),
            broadens: false,
        },
    ];
    network.template_diff = Some(NETWORK_DIFF.into());

    let mut database = unit("database", s, Action::Create);
    database.change_set = change_set(s, "database", "CREATE");
    database.reasons = vec![Reason::Added {
        detail: "new stack database in pipeline shop".into(),
    }];
    database.resources = vec![
        resource(
            "SubnetGroup",
            "AWS::RDS::DBSubnetGroup",
            ResourceAction::Add,
        ),
        resource(
            "DbSecurityGroup",
            "AWS::EC2::SecurityGroup",
            ResourceAction::Add,
        ),
        resource("Db", "AWS::RDS::DBInstance", ResourceAction::Add),
        resource("DbAlarm", "AWS::CloudWatch::Alarm", ResourceAction::Add),
    ];
    database.parameters = vec![
        param("InstanceClass", None, Some("db.t3.micro")),
        param("AllocatedStorage", None, Some("20")),
        ParameterChange {
            secret: true,
            expression: Some("${ssm:/shop/staging/db-password}".into()),
            ..param("MasterPassword", None, Some("****"))
        },
        param("AllowedCidrs", None, Some("10.0.0.0/8|172.16.0.0/12")),
        ParameterChange {
            known_after_apply: true,
            expression: Some("${network.VpcId}".into()),
            ..param("VpcId", None, Some("vpc-0abc"))
        },
    ];
    database.inputs = vec![Input {
        parameter: "VpcId".into(),
        reference: "${network.VpcId}".into(),
        from_stack: "network".into(),
        because: Some("Vpc is replaced".into()),
        state: InputState::KnownAfterApply {
            current: Some("vpc-0abc".into()),
        },
    }];

    let mut cdn = unit("cdn", s, Action::NoChange);
    cdn.stack_status = Some("UPDATE_COMPLETE".into());

    let mut app = unit("app", s, Action::Pending);
    app.reasons = vec![Reason::Input {
        stack: "database".into(),
        output: "Endpoint".into(),
        reference: "${database.Endpoint}".into(),
        because: Some("database is new".into()),
    }];
    app.parameters = vec![ParameterChange {
        known_after_apply: true,
        expression: Some("${database.Endpoint}".into()),
        ..param("DbEndpoint", None, None)
    }];
    app.inputs = vec![
        Input {
            parameter: "DbEndpoint".into(),
            reference: "${database.Endpoint}".into(),
            from_stack: "database".into(),
            because: None,
            state: InputState::Pending,
        },
        Input {
            parameter: "VpcId".into(),
            reference: "${network.VpcId}".into(),
            from_stack: "network".into(),
            because: Some("Vpc is replaced".into()),
            state: InputState::KnownAfterApply {
                current: Some("vpc-0abc".into()),
            },
        },
    ];
    app.message = Some(
        "database does not exist yet, so its output Endpoint has no value to plan with; app is \
         planned again once database is applied."
            .into(),
    );

    let mut queue = unit("queue", s, Action::Blocked);
    queue.stack_status = Some("UPDATE_ROLLBACK_FAILED".into());
    queue.last_updated = Some("2024-04-30T17:03:10Z".into());
    queue.message = Some(
        "The stack is in UPDATE_ROLLBACK_FAILED and cannot be changed.\nFix the cause, then run \
         `aws cloudformation continue-update-rollback --stack-name staging-queue` and plan again."
            .into(),
    );

    let mut legacy = unit("legacy", s, Action::Remove);
    legacy.stack_status = Some("CREATE_COMPLETE".into());
    legacy.reasons = vec![Reason::Removed {
        detail: "stack legacy is no longer in pipeline shop".into(),
    }];
    legacy.message =
        Some("left the config; the stack is deleted only when apply is allowed to delete".into());

    // Removed from the config, and never deployed: nothing to delete.
    let mut old_cache = unit("old-cache", s, Action::Remove);
    old_cache.message =
        Some("left the config; the stack does not exist (nothing to delete)".into());

    let p = "production";
    let mut prod_db = unit("database", p, Action::Update);
    prod_db.change_set = change_set(p, "database", "UPDATE");
    prod_db.reasons = vec![Reason::Parameter {
        name: "InstanceClass".into(),
        before: Some("db.t3.large".into()),
        after: Some("db.r6g.large".into()),
    }];
    let mut db = resource("Db", "AWS::RDS::DBInstance", ResourceAction::Modify);
    db.replacement = Replacement::False;
    db.scope = vec!["Properties".into()];
    db.details = vec![property(
        "DBInstanceClass",
        RequiresRecreation::Never,
        "db.t3.large",
        "db.r6g.large",
    )];
    prod_db.resources = vec![db];
    prod_db.parameters = vec![
        param("InstanceClass", Some("db.t3.large"), Some("db.r6g.large")),
        ParameterChange {
            secret: true,
            ..param("MasterPassword", Some("****"), Some("****"))
        },
    ];

    let mut search = unit("search", p, Action::Failed);
    search.message = Some(
        "CreateChangeSet failed: Template format error: Unresolved resource dependencies \
         [SearchDomain] in the <Resources> block of the template"
            .into(),
    );

    Plan {
        version: PLAN_JSON_VERSION,
        id: "0b6f2d1e-5a7c-4c1e-9d3b-7f0e2a6c8d41".into(),
        created_at: "2024-05-01T10:00:00Z".into(),
        offline: false,
        base: Some(rev("main", "5d0c1e2b9a8f7e6d5c4b3a2918273645f0e1d2c3")),
        head: rev("bigger-db", "a91e7f3c0ffee1234567890abcdef1234567890a"),
        environments: vec![
            EnvironmentPlan {
                name: "production".into(),
                pipeline: "shop".into(),
                account: "222222222222".into(),
                region: "us-east-1".into(),
                units: vec![prod_db, search],
                left_out: Vec::new(),
            },
            EnvironmentPlan {
                name: "staging".into(),
                pipeline: "shop".into(),
                account: "111111111111".into(),
                region: "us-east-1".into(),
                units: vec![network, database, cdn, app, queue, legacy, old_cache],
                left_out: Vec::new(),
            },
        ],
        policy: Some(PolicySummary {
            rules_from: "5d0c1e2b9a8f7e6d5c4b3a2918273645f0e1d2c3".into(),
            files: vec![
                "policies/logging.guard".into(),
                "policies/network.guard".into(),
            ],
            stacks_checked: 6,
            problems: Vec::new(),
        }),
    }
}

/// An offline plan with nothing to change.
fn quiet_plan() -> Plan {
    let mut cdn = unit("cdn", "staging", Action::NoChange);
    cdn.reasons = vec![Reason::Input {
        stack: "network".into(),
        output: "VpcId".into(),
        reference: "${network.VpcId}".into(),
        because: Some("Vpc is replaced".into()),
    }];
    Plan {
        version: PLAN_JSON_VERSION,
        id: "quiet".into(),
        created_at: "2024-05-01T10:00:00Z".into(),
        offline: true,
        base: None,
        head: rev("main", "5d0c1e2b9a8f7e6d5c4b3a2918273645f0e1d2c3"),
        environments: vec![EnvironmentPlan {
            name: "staging".into(),
            pipeline: "shop".into(),
            account: "111111111111".into(),
            region: "us-east-1".into(),
            units: vec![cdn],
            left_out: Vec::new(),
        }],
        policy: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Text and Markdown.

#[test]
fn text_of_a_realistic_plan() {
    insta::assert_snapshot!("text", plan_text(&realistic_plan(), false));
}

#[test]
fn markdown_of_a_realistic_plan() {
    insta::assert_snapshot!("markdown", plan_markdown(&realistic_plan()));
}

#[test]
fn text_and_markdown_of_a_plan_without_changes() {
    let plan = quiet_plan();
    let text = plan_text(&plan, false);
    assert!(
        text.starts_with("Plan of main (5d0c1e2) (offline) — plan quiet\n"),
        "{text}"
    );
    assert!(text.ends_with("\nNo changes.\n"), "{text}");
    assert!(!text.contains("warning"), "{text}");
    let md = plan_markdown(&plan);
    assert!(md.contains("No changes."), "{md}");
    assert!(!md.contains("<details>"), "{md}");
    assert!(!md.contains("[!WARNING]"), "{md}");
}

#[test]
fn totals_count_stacks_by_action() {
    let text = plan_text(&realistic_plan(), false);
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "6 stacks to change in 2 environments (1 to create, 2 to update, 2 to remove, 1 pending), \
         1 with no changes, 2 could not be planned (1 blocked, 1 failed)."
    );
}

#[test]
fn colour_only_when_asked() {
    let plan = realistic_plan();
    let plain = plan_text(&plan, false);
    let coloured = plan_text(&plan, true);
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[32m+      CidrBlock: 10.1.0.0/16\x1b[0m"));
    assert!(coloured.contains("\x1b[31m-      CidrBlock: 10.0.0.0/16\x1b[0m"));
    // Without the escape codes the coloured text is the plain one: colours never shift columns.
    let stripped = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&coloured, "");
    assert_eq!(stripped, plain);
}

#[test]
fn text_from_templates_and_aws_cannot_drive_the_terminal() {
    let mut plan = quiet_plan();
    let mut u = unit("odd", "staging", Action::Failed);
    u.message = Some("bad\x1b]0;title\x07 thing\x1b[2J".into());
    u.template_diff = Some("+Description: \x1b[31mred\x1b[0m\r\n".into());
    plan.environments[0].units.push(u);
    let sgr = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    for color in [false, true] {
        let text = plan_text(&plan, color);
        let stripped = sgr.replace_all(&text, "");
        assert!(!stripped.contains('\x1b'), "{text:?}");
        assert!(!stripped.contains('\x07'), "{text:?}");
        assert!(
            stripped.contains("bad\\u{1b}]0;title\\u{7} thing\\u{1b}[2J"),
            "{text}"
        );
        assert!(
            stripped.contains("+Description: \\u{1b}[31mred\\u{1b}[0m"),
            "{text}"
        );
    }
}

#[test]
fn secrets_stay_masked_even_when_the_plan_holds_a_value() {
    let mut plan = realistic_plan();
    let db = &mut plan.environments[1].units[1];
    db.parameters.push(ParameterChange {
        secret: true,
        ..param("ApiKey", Some("old-s3cr3t"), Some("new-s3cr3t"))
    });
    db.inputs.push(Input {
        parameter: "ApiKey".into(),
        reference: "${ssm:/shop/api-key}".into(),
        from_stack: "keys".into(),
        because: Some("Key changes".into()),
        state: InputState::KnownAfterApply {
            current: Some("new-s3cr3t".into()),
        },
    });
    for out in [
        plan_text(&plan, false),
        plan_text(&plan, true),
        plan_markdown(&plan),
    ] {
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(out.contains("****"));
    }
}

#[test]
fn markdown_escapes_user_text() {
    let mut plan = quiet_plan();
    let mut u = unit("we|rd", "staging", Action::Failed);
    u.stack_name = "staging-<b>weird</b>".into();
    u.message = Some("bad `value` | <details> *here* @someone #12 $x$".into());
    u.parameters = vec![param("P", Some("a`b|c"), Some("``x``"))];
    plan.environments[0].units.push(u);
    let md = plan_markdown(&plan);
    check_well_formed_within(&md, usize::MAX).unwrap();
    assert!(md.contains("| staging | we\\|rd | failed |"), "{md}");
    assert!(md.contains("<b>staging / we|rd</b>"), "{md}");
    assert!(md.contains("Stack `staging-<b>weird</b>`"), "{md}");
    assert!(
        md.contains("> bad \\`value\\` \\| \\<details\\> \\*here\\* \\@someone \\#12 \\$x\\$"),
        "{md}"
    );
    assert!(md.contains("| `P` | ``a`b\\|c`` | ``` ``x`` ``` |"), "{md}");
}

#[test]
fn template_diff_fence_is_longer_than_any_backtick_run_in_it() {
    let md = plan_markdown(&realistic_plan());
    assert!(
        md.contains("\n````diff\n--- deployed staging-network\n"),
        "{md}"
    );
    assert!(md.contains("+      CidrIp: 0.0.0.0/0\n````\n"), "{md}");
    check_well_formed(&md).unwrap();
}

#[test]
fn plan_json_example_in_the_docs_is_a_plan() {
    let doc = include_str!("../../docs/plan-json.md");
    let start = doc.find("```json\n").expect("an example") + "```json\n".len();
    let end = start + doc[start..].find("\n```").unwrap();
    let plan: Plan = serde_json::from_str(&doc[start..end]).expect("the example parses");
    assert_eq!(plan.version, PLAN_JSON_VERSION);
    let back: Plan = serde_json::from_str(&serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn plan_json_round_trips() {
    let plan = realistic_plan();
    let json = serde_json::to_string_pretty(&plan).unwrap();
    assert!(json.contains("\"action\": \"no_change\""));
    assert!(json.contains("\"state\": \"known_after_apply\""));
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
}

// ---------------------------------------------------------------------------------------------
// Splitting.

/// A plan whose network diff is long: `lines` more lines of YAML.
fn plan_with_long_diff(lines: usize) -> Plan {
    let mut plan = realistic_plan();
    let mut diff = NETWORK_DIFF.to_string();
    diff.push_str("@@ -40,0 +49,400 @@\n");
    for i in 0..lines {
        diff.push_str(&format!("+  Queue{i}:\n+    Type: AWS::SQS::Queue\n"));
    }
    plan.environments[1].units[0].template_diff = Some(diff);
    plan
}

#[test]
fn a_plan_that_fits_is_one_comment_without_a_header() {
    let md = plan_markdown(&realistic_plan());
    let split = split_markdown(&md, GITHUB_COMMENT_LIMIT, 5);
    assert_eq!(
        split,
        Split {
            parts: vec![md],
            truncated: false
        }
    );
}

#[test]
fn split_with_a_small_limit_reads_well() {
    let md = plan_markdown(&plan_with_long_diff(40));
    let split = split_markdown(&md, 2_000, 20);
    assert!(!split.truncated);
    for part in &split.parts {
        check_well_formed_within(part, 2_000).unwrap();
    }
    let shown = split
        .parts
        .iter()
        .map(|p| format!("{p}\n(end of comment, {} characters)", p.chars().count()))
        .collect::<Vec<_>>()
        .join("\n======================================================================\n");
    insta::assert_snapshot!("split_2000", shown);
}

#[test]
fn split_beyond_max_parts_is_cut_with_a_note() {
    let md = plan_markdown(&plan_with_long_diff(400));
    let full = split_markdown(&md, 2_000, usize::MAX);
    assert!(full.parts.len() > 3);
    let split = split_markdown(&md, 2_000, 3);
    assert!(split.truncated);
    assert_eq!(split.parts.len(), 3);
    for (part, same) in split.parts[..2].iter().zip(&full.parts) {
        assert_eq!(without_header(part), without_header(same));
    }
    assert!(split.parts[2].starts_with("**formwork plan — part 3 of 3**\n\n"));
    assert!(
        split.parts[2].ends_with(
            "> The plan does not fit in 3 comments and was cut here: the full plan is in the \
             check run summary and the job log.\n"
        ),
        "{}",
        split.parts[2]
    );
    for part in &split.parts {
        check_well_formed_within(part, 2_000).unwrap();
    }
}

#[test]
fn a_long_line_is_cut_into_pieces() {
    let long = "x".repeat(5_000);
    let doc = format!("# title\n\n```\n{long}\n```\n");
    let split = split_markdown(&doc, 1_500, 10);
    assert!(split.parts.len() >= 4);
    let mut joined = String::new();
    for part in &split.parts {
        check_well_formed_within(part, 1_500).unwrap();
        joined.extend(part.chars().filter(|c| *c == 'x'));
    }
    assert_eq!(joined, long);
}

#[test]
fn checker_finds_unbalanced_parts() {
    assert!(check_well_formed("a\n```\ncode\n").is_err());
    assert!(check_well_formed("<details><summary>s</summary>\n\ntext\n").is_err());
    assert!(check_well_formed("text\n</details>\n").is_err());
    assert!(check_well_formed("````\n```\n</details>\n````\n").is_ok());
    assert!(check_well_formed("<details>\n\n```\n</details>\n").is_err());
    assert!(check_well_formed(&"x".repeat(GITHUB_COMMENT_LIMIT + 1)).is_err());
    assert!(
        check_well_formed("<details><summary>s</summary>\n\n~~~\n```\n~~~\n</details>\n").is_ok()
    );
}

/// A part without its `**formwork plan — part i of n**` line.
fn without_header(part: &str) -> &str {
    part.split_once('\n').map_or(part, |(_, rest)| rest)
}

/// Checks every promise of [`split_markdown`] for one document.
fn check_split(doc: &str, limit: usize, max_parts: usize) -> Result<(), TestCaseError> {
    let split = split_markdown(doc, limit, max_parts);
    let full = split_markdown(doc, limit, usize::MAX);
    let needed = full.parts.len();
    prop_assert_eq!(split.truncated, needed > max_parts);
    prop_assert_eq!(split.parts.len(), needed.min(max_parts));
    let n = split.parts.len();
    for (i, part) in split.parts.iter().enumerate() {
        prop_assert!(part.chars().count() <= limit);
        if let Err(e) = check_well_formed_within(part, limit) {
            return Err(TestCaseError::fail(format!("part {}: {e}\n{part}", i + 1)));
        }
        if n > 1 {
            let header = format!("**formwork plan — part {} of {n}**\n\n", i + 1);
            prop_assert!(part.starts_with(&header), "{}", part);
        }
    }
    if split.truncated {
        // The same cuts as without a limit on parts, up to the last part.
        for (part, same) in split.parts[..n - 1].iter().zip(&full.parts) {
            prop_assert_eq!(without_header(part), without_header(same));
        }
        prop_assert!(split.parts[n - 1].contains("was cut here"));
    } else {
        prop_assert_eq!(&split, &full);
        // Every line of the document, in order, among the lines of the parts (which add only
        // headers and the wrappers closed and opened again).
        let mut parts_lines = split.parts.iter().flat_map(|p| p.lines());
        for line in doc.lines() {
            prop_assert!(
                parts_lines.any(|l| l == line),
                "line {:?} missing or out of order",
                line
            );
        }
    }
    Ok(())
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,14}"
}

/// Text that tries to break Markdown: backticks, fences, `<details>`, pipes, non-ASCII.
fn nasty_line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9 :./-]{0,70}",
        2 => "[a-z `|<>*_~#@$é日]{0,40}",
        1 => Just("```".to_string()),
        1 => Just(" ````yaml".to_string()),
        1 => Just("~~~".to_string()),
        1 => Just("<details>".to_string()),
        1 => Just("</details>".to_string()),
        1 => Just("<details><summary>x</summary>".to_string()),
        1 => Just("| a | b |".to_string()),
        1 => Just("|---|---|".to_string()),
        1 => Just(String::new()),
    ]
}

fn diff() -> impl Strategy<Value = String> {
    prop_oneof![
        // Short diffs, and diffs several times the largest limit used.
        3 => prop::collection::vec(nasty_line(), 0..30),
        1 => prop::collection::vec(nasty_line(), 100..600),
    ]
    .prop_map(|lines| {
        lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| match i % 3 {
                0 => format!("+{l}"),
                1 => format!("-{l}"),
                _ => format!(" {l}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn arb_resource() -> impl Strategy<Value = ResourceChange> {
    (
        name(),
        prop::sample::select(vec![
            ResourceAction::Add,
            ResourceAction::Modify,
            ResourceAction::Remove,
            ResourceAction::Import,
            ResourceAction::Dynamic,
        ]),
        prop::sample::select(vec![
            Replacement::True,
            Replacement::False,
            Replacement::Conditional,
            Replacement::Unknown,
        ]),
        prop::collection::vec("[A-Za-z|`<>]{1,12}", 0..4),
    )
        .prop_map(|(id, action, replacement, props)| ResourceChange {
            replacement,
            details: props
                .iter()
                .map(|p| property(p, RequiresRecreation::Conditionally, "a", "b"))
                .collect(),
            ..resource(&id, "AWS::Some::Thing", action)
        })
}

fn arb_unit() -> impl Strategy<Value = UnitPlan> {
    (
        name(),
        prop::sample::select(vec![
            Action::Create,
            Action::Update,
            Action::NoChange,
            Action::Remove,
            Action::Pending,
            Action::Blocked,
            Action::Failed,
        ]),
        prop::collection::vec(arb_resource(), 0..8),
        prop::collection::vec((name(), nasty_line(), nasty_line(), any::<bool>()), 0..4),
        prop::option::of(diff()),
        prop::option::of(prop::collection::vec(nasty_line(), 1..4)),
        any::<bool>(),
    )
        .prop_map(
            |(stack, action, resources, params, template_diff, message, broadens)| {
                let mut u = unit(&stack, "env", action);
                u.resources = resources;
                u.parameters = params
                    .into_iter()
                    .map(|(n, b, a, secret)| ParameterChange {
                        secret,
                        ..param(&n, Some(&b), Some(&a))
                    })
                    .collect();
                if broadens {
                    u.security.push(SecurityChange {
                        resource: "Sg".into(),
                        resource_type: "AWS::EC2::SecurityGroup".into(),
                        kind: SecurityKind::SecurityGroupRule,
                        change: SecurityChangeKind::Added,
                        description: "ingress tcp 0-65535 from 0.0.0.0/0 | `x`".into(),
                        broadens,
                    });
                }
                u.template_diff = template_diff;
                u.message = message.map(|m| m.join("\n"));
                u
            },
        )
}

fn arb_plan() -> impl Strategy<Value = Plan> {
    prop::collection::vec((name(), prop::collection::vec(arb_unit(), 1..6)), 1..4).prop_map(
        |envs| {
            let mut plan = quiet_plan();
            plan.environments = envs
                .into_iter()
                .map(|(name, units)| EnvironmentPlan {
                    name,
                    pipeline: "shop".into(),
                    account: "111111111111".into(),
                    region: "eu-west-1".into(),
                    units,
                    left_out: Vec::new(),
                })
                .collect();
            plan
        },
    )
}

/// A block of a generic Markdown document, well formed by construction.
#[derive(Clone, Debug)]
enum RawBlock {
    Paragraph(Vec<String>),
    Table(Vec<String>),
    Fence(Vec<String>),
    Details(String, Vec<RawBlock>),
}

impl RawBlock {
    fn render(&self, out: &mut Vec<String>) {
        match self {
            RawBlock::Paragraph(lines) => {
                out.extend(lines.iter().map(|l| format!("text {l}")));
            }
            RawBlock::Table(rows) => {
                out.push("| key | value |".into());
                out.push("|---|---|".into());
                out.extend(
                    rows.iter()
                        .map(|r| format!("| k | {} |", r.replace('|', "\\|"))),
                );
            }
            RawBlock::Fence(lines) => {
                let longest = lines
                    .iter()
                    .flat_map(|l| l.split(|c| c != '`'))
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                let fence = "`".repeat((longest + 1).max(3));
                out.push(format!("{fence}text"));
                out.extend(lines.iter().cloned());
                out.push(fence);
            }
            RawBlock::Details(summary, blocks) => {
                out.push(format!("<details><summary>{summary}</summary>"));
                out.push(String::new());
                for b in blocks {
                    b.render(out);
                    out.push(String::new());
                }
                out.push("</details>".into());
            }
        }
        out.push(String::new());
    }
}

fn raw_leaf() -> impl Strategy<Value = RawBlock> {
    prop_oneof![
        prop::collection::vec("[a-zA-Z0-9 ,.]{1,80}", 1..6).prop_map(RawBlock::Paragraph),
        prop::collection::vec("[a-z0-9 |`]{0,60}", 0..30).prop_map(RawBlock::Table),
        prop_oneof![
            prop::collection::vec(nasty_line(), 0..20),
            prop::collection::vec(nasty_line(), 50..400),
        ]
        .prop_map(RawBlock::Fence),
    ]
}

fn raw_doc() -> impl Strategy<Value = String> {
    let block = raw_leaf().prop_recursive(2, 24, 6, |inner| {
        ("[a-z ]{1,30}", prop::collection::vec(inner, 1..6))
            .prop_map(|(s, blocks)| RawBlock::Details(s, blocks))
    });
    prop::collection::vec(block, 1..12).prop_map(|blocks| {
        let mut lines = vec!["## a document".to_string(), String::new()];
        for b in &blocks {
            b.render(&mut lines);
        }
        lines.join("\n")
    })
}

/// Cases per property: `FORMWORK_FUZZ_CASES` for long runs, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("FORMWORK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    #[test]
    fn rendered_plans_are_well_formed_and_split_well(
        plan in arb_plan(),
        limit in 1_024usize..6_000,
        max_parts in 1usize..12,
    ) {
        let md = plan_markdown(&plan);
        if let Err(e) = check_well_formed_within(&md, usize::MAX) {
            return Err(TestCaseError::fail(format!("{e}\n{md}")));
        }
        check_split(&md, limit, max_parts)?;
        let _ = plan_text(&plan, true);
    }

    #[test]
    fn markdown_documents_split_well(
        doc in raw_doc(),
        limit in 1_024usize..4_000,
        max_parts in 1usize..12,
    ) {
        check_well_formed_within(&doc, usize::MAX).unwrap();
        check_split(&doc, limit, max_parts)?;
    }
}
