//! `/formwork …` comment commands: which comments are commands, the grammar, the messages for
//! malformed ones, and that replies are safe to post as Markdown.

use formwork::github::commands::{Command, Parsed, help_markdown, parse_comment};
use proptest::prelude::*;

fn plan(environments: &[&str], stacks: &[&str]) -> Parsed {
    Parsed::Command(Command::Plan {
        environments: environments.iter().map(|s| s.to_string()).collect(),
        stacks: stacks.iter().map(|s| s.to_string()).collect(),
    })
}

fn apply(environments: &[&str]) -> Parsed {
    Parsed::Command(Command::Apply {
        environments: environments.iter().map(|s| s.to_string()).collect(),
    })
}

fn unlock(environments: &[&str]) -> Parsed {
    Parsed::Command(Command::Unlock {
        environments: environments.iter().map(|s| s.to_string()).collect(),
    })
}

const HELP: Parsed = Parsed::Command(Command::Help);
const NOT: Parsed = Parsed::NotACommand;

fn check(table: &[(&str, Parsed)]) {
    let mut failures = Vec::new();
    for (body, expected) in table {
        let got = parse_comment(body);
        if &got != expected {
            failures.push(format!(
                "{body:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// The message of an invalid command, checked to be safe Markdown.
fn invalid(body: &str) -> String {
    match parse_comment(body) {
        Parsed::Invalid { message } => {
            assert_markdown_safe(&message);
            message
        }
        other => panic!("{body:?}: expected Invalid, got {other:?}"),
    }
}

/// Every (body, fragments the message must contain) is Invalid with those fragments.
fn check_invalid(table: &[(&str, &[&str])]) {
    let mut failures = Vec::new();
    for (body, fragments) in table {
        let message = invalid(body);
        for fragment in *fragments {
            if !message.contains(fragment) {
                failures.push(format!("{body:?}: {message:?} lacks {fragment:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Splits Markdown into the text outside code spans and the contents of the code spans, as
/// CommonMark does: a run of n backticks opens a span closed by the next run of exactly n.
fn code_spans(md: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = md.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|&&c| c == '`').count();
    let mut outside = String::new();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            outside.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                let mut content: String = chars[i + n..j].iter().collect();
                if content.len() >= 2
                    && content.starts_with(' ')
                    && content.ends_with(' ')
                    && !content.chars().all(|c| c == ' ')
                {
                    content = content[1..content.len() - 1].to_string();
                }
                spans.push(content);
                i = j + n;
            }
            None => {
                outside.extend(std::iter::repeat_n('`', n));
                i += n;
            }
        }
    }
    (outside, spans)
}

/// Outside code spans a message has only formwork's own plain prose: no markup, no HTML, no
/// mentions, no stray backticks, no line breaks.
fn assert_markdown_safe(message: &str) {
    let (outside, _) = code_spans(message);
    for bad in [
        '`', '@', '<', '>', '&', '*', '_', '[', ']', '!', '\\', '|', '#', '\n', '\r',
    ] {
        assert!(
            !outside.contains(bad),
            "{bad:?} outside code spans in {message:?} (outside: {outside:?})"
        );
    }
}

#[test]
fn a_command_is_the_first_non_blank_line_starting_with_formwork() {
    check(&[
        ("/formwork plan", plan(&[], &[])),
        ("/formwork", HELP),
        ("/formwork   ", HELP),
        ("/formwork\tplan", plan(&[], &[])),
        ("/formwork\u{a0}plan", plan(&[], &[])),
        ("/formwork plan\r\n", plan(&[], &[])),
        (
            "\r\n\r\n  /formwork apply -e staging  \r\nThanks!",
            apply(&["staging"]),
        ),
        ("\n \t \n/formwork unlock -e staging", unlock(&["staging"])),
        ("   /formwork plan", plan(&[], &[])),
        (" \t\n   /formwork plan", plan(&[], &[])),
        ("\u{feff}/formwork plan", plan(&[], &[])),
        // Only the first line is the command; the rest is free text.
        (
            "/formwork plan\n/formwork apply -e production",
            plan(&[], &[]),
        ),
        ("/formwork plan\n-e production", plan(&[], &[])),
        ("/formwork plan\r-e production", plan(&[], &[])),
        (
            "/formwork plan -e staging\n\nBecause the VPC changed.",
            plan(&["staging"], &[]),
        ),
        // Not commands.
        ("", NOT),
        ("   \n\t\n", NOT),
        ("/formworks", NOT),
        ("/formworks plan", NOT),
        ("/formwork-plan", NOT),
        ("/formwork:", NOT),
        ("/formwork.", NOT),
        ("/Formwork plan", NOT),
        ("/FORMWORK plan", NOT),
        ("formwork plan", NOT),
        ("//formwork plan", NOT),
        ("\\/formwork plan", NOT),
        ("please run /formwork plan", NOT),
        ("LGTM\n/formwork apply -e production", NOT),
        ("- /formwork plan", NOT),
        ("# /formwork plan", NOT),
        ("\u{200b}/formwork plan", NOT),
    ]);
}

#[test]
fn what_markdown_shows_as_code_a_quote_or_hidden_never_runs() {
    check(&[
        // Quotes.
        ("> /formwork plan", NOT),
        (">/formwork plan", NOT),
        ("> > /formwork apply", NOT),
        // Fenced code blocks: backticks or tildes, any length ≥ 3, info string, indented fence.
        ("```\n/formwork plan\n```", NOT),
        ("~~~\n/formwork plan\n~~~", NOT),
        ("````\n/formwork plan\n````", NOT),
        ("```sh\n/formwork apply -e production\n```", NOT),
        ("``` bash\n/formwork apply\n```", NOT),
        ("~~~~~ text\n/formwork apply\n~~~~~", NOT),
        ("   ```\n/formwork plan\n   ```", NOT),
        ("  ~~~\n  /formwork plan\n  ~~~", NOT),
        ("\n\n```\r\n/formwork plan\r\n```\r\n", NOT),
        // Indented code blocks: four columns of indentation, or a tab.
        ("    /formwork plan", NOT),
        ("     /formwork plan", NOT),
        ("\t/formwork plan", NOT),
        ("  \t/formwork plan", NOT),
        // Inline code.
        ("`/formwork plan`", NOT),
        ("`` /formwork plan ``", NOT),
        ("Try `/formwork plan -e staging`", NOT),
        // HTML comments.
        ("<!-- /formwork plan -->", NOT),
        ("<!--\n/formwork apply -e production\n-->", NOT),
        ("<!-- note -->\n/formwork plan", NOT),
        // Other HTML.
        ("<details>\n/formwork plan\n</details>", NOT),
    ]);
}

#[test]
fn options_in_every_form() {
    check(&[
        (
            "/formwork plan -e staging -e production -s vpc -s alb",
            plan(&["staging", "production"], &["vpc", "alb"]),
        ),
        (
            "/formwork plan --env staging --environment production --stack vpc",
            plan(&["staging", "production"], &["vpc"]),
        ),
        (
            "/formwork plan -e=staging --env=production --environment=dev --stack=vpc -s=alb",
            plan(&["staging", "production", "dev"], &["vpc", "alb"]),
        ),
        (
            "/formwork plan -s vpc -e staging",
            plan(&["staging"], &["vpc"]),
        ),
        (
            "/formwork plan -e staging,production -s vpc,alb",
            plan(&["staging", "production"], &["vpc", "alb"]),
        ),
        ("/formwork plan --env=a,b,c", plan(&["a", "b", "c"], &[])),
        ("/formwork apply", apply(&[])),
        ("/formwork apply -e staging", apply(&["staging"])),
        (
            "/formwork apply --environment=staging,production",
            apply(&["staging", "production"]),
        ),
        ("/formwork unlock", unlock(&[])),
        ("/formwork unlock --env staging", unlock(&["staging"])),
        ("/formwork help", HELP),
        ("/formwork help plan", HELP),
        ("/formwork plan --help", HELP),
        ("/formwork apply -e staging -h", HELP),
        ("/formwork -h", HELP),
        ("/formwork --help", HELP),
        // Names: letters, digits, `-`, `_`, `.`.
        (
            "/formwork plan -e Prod_2.eu-west-1 -s 2-1-db-aurora-master",
            plan(&["Prod_2.eu-west-1"], &["2-1-db-aurora-master"]),
        ),
        ("/formwork plan -e 1", plan(&["1"], &[])),
    ]);
}

#[test]
fn duplicates_are_removed_and_order_kept() {
    check(&[
        (
            "/formwork plan -e staging -e staging,production -e staging -s vpc,alb,vpc -s alb",
            plan(&["staging", "production"], &["vpc", "alb"]),
        ),
        ("/formwork apply -e b,a,b,a,c", apply(&["b", "a", "c"])),
        // Names are case-sensitive: these are two environments.
        (
            "/formwork unlock -e Prod -e prod",
            unlock(&["Prod", "prod"]),
        ),
    ]);
}

#[test]
fn extra_whitespace_is_fine() {
    check(&[
        (
            "/formwork   plan   -e   staging\t\t-s vpc   ",
            plan(&["staging"], &["vpc"]),
        ),
        (
            "  /formwork\t\tapply\t-e\tstaging\t\r\n",
            apply(&["staging"]),
        ),
        ("/formwork plan  \r\n\r\n", plan(&[], &[])),
        ("\n\n\n/formwork help\n", HELP),
    ]);
}

#[test]
fn values_are_quoted_like_in_a_shell() {
    check(&[
        ("/formwork plan -e \"staging\"", plan(&["staging"], &[])),
        ("/formwork plan -s 'my-stack'", plan(&[], &["my-stack"])),
        ("/formwork plan -e \"stag\"ing", plan(&["staging"], &[])),
        (
            "/formwork plan -e 'prod'\"uction\"",
            plan(&["production"], &[]),
        ),
        ("/formwork plan --env=\"staging\"", plan(&["staging"], &[])),
        ("/formwork plan \"--env\" staging", plan(&["staging"], &[])),
        ("/formwork plan -e \"a,b\"", plan(&["a", "b"], &[])),
        (
            "/formwork plan -e \"staging, production\"",
            plan(&["staging", "production"], &[]),
        ),
        ("/formwork plan -e st\\aging", plan(&["staging"], &[])),
        ("/formwork \"plan\" -e staging", plan(&["staging"], &[])),
        ("/formwork 'apply'", apply(&[])),
    ]);
    // Inside double quotes a backslash escapes `"`, `\`, `` ` `` and `$` and is kept otherwise;
    // inside single quotes it is literal. Either way these names are invalid, and the message
    // shows the value as read.
    check_invalid(&[
        (
            "/formwork plan -e \"st\\\"ag\"",
            &["`st\"ag`", "`\"` is not allowed"],
        ),
        ("/formwork plan -e \"st\\\\ag\"", &["`st\\ag`"]),
        ("/formwork plan -e \"sta\\ging\"", &["`sta\\ging`"]),
        ("/formwork plan -e 'st\\\"ag'", &["`st\\\"ag`"]),
        ("/formwork plan -e \"a b\"", &["`a b`", "U+0020 (a space)"]),
    ]);
}

#[test]
fn unterminated_quotes_and_a_trailing_backslash_are_invalid() {
    check_invalid(&[
        (
            "/formwork plan -e \"staging",
            &["Unterminated double quote", "`\"staging`"],
        ),
        (
            "/formwork plan -e 'staging",
            &["Unterminated single quote", "`'staging`"],
        ),
        (
            "/formwork plan -e \"staging\\\"",
            &["Unterminated double quote"],
        ),
        ("/formwork plan -e 'a\nb'", &["Unterminated single quote"]),
        // A trailing backslash stands for itself, as in a shell: an argument plan does not take.
        (
            "/formwork plan -e staging \\",
            &["Unexpected argument `\\` after `/formwork plan`"],
        ),
    ]);
}

#[test]
fn unknown_commands_suggest_the_nearest() {
    check_invalid(&[
        (
            "/formwork destroy",
            &[
                "Unknown command `destroy`.",
                "`plan`, `apply`, `unlock`, `continue`, `override` and `help`",
            ],
        ),
        (
            "/formwork aply",
            &["Unknown command `aply`", "Did you mean `apply`?"],
        ),
        ("/formwork plna -e x", &["Did you mean `plan`?"]),
        ("/formwork PLAN", &["Did you mean `plan`?"]),
        ("/formwork unlcok", &["Did you mean `unlock`?"]),
        ("/formwork hlep", &["Did you mean `help`?"]),
        (
            "/formwork -e staging",
            &[
                "needs a command before its options",
                "`/formwork plan -e staging`",
            ],
        ),
    ]);
    let message = invalid("/formwork destroy");
    assert!(!message.contains("Did you mean"), "{message}");
}

#[test]
fn unknown_and_misplaced_options_say_what_is_wrong() {
    check_invalid(&[
        (
            "/formwork plan --enviroment staging",
            &[
                "Unknown option `--enviroment` for `/formwork plan`",
                "Did you mean `--environment`?",
            ],
        ),
        (
            "/formwork plan -env staging",
            &["Unknown option `-env`", "Did you mean `--env`?"],
        ),
        ("/formwork plan --stacks vpc", &["Did you mean `--stack`?"]),
        ("/formwork plan -E staging", &["Did you mean `-e`?"]),
        (
            "/formwork plan --env-name=x",
            &["Unknown option `--env-name`"],
        ),
        ("/formwork plan -- -e x", &["Unknown option `--`"]),
        (
            "/formwork apply -s vpc",
            &["`/formwork apply` does not take `-s`", "with `plan` only"],
        ),
        ("/formwork apply --stack=vpc", &["does not take `--stack`"]),
        (
            "/formwork unlock -s vpc",
            &["`/formwork unlock` does not take `-s`"],
        ),
        (
            "/formwork apply --stacks vpc",
            &[
                "Unknown option `--stacks` for `/formwork apply`",
                "`--stack` works with `plan` only",
            ],
        ),
        (
            "/formwork apply --force",
            &[
                "Unknown option `--force`",
                "Its options are `-e`/`--env`/`--environment`.",
            ],
        ),
    ]);
}

#[test]
fn options_need_values() {
    check_invalid(&[
        (
            "/formwork plan -e",
            &["`-e` needs an environment name after it"],
        ),
        (
            "/formwork plan --stack",
            &["`--stack` needs a stack name after it"],
        ),
        (
            "/formwork plan -e -s vpc",
            &["`-e` needs an environment name after it, but the next word is the option `-s`"],
        ),
        (
            "/formwork plan -e=",
            &["`-e` was given an empty environment name"],
        ),
        (
            "/formwork plan -e ''",
            &["`-e` was given an empty environment name"],
        ),
        (
            "/formwork plan -s \" \"",
            &["`-s` was given an empty stack name"],
        ),
        (
            "/formwork plan -e staging,",
            &["The list `staging,` after `-e` has an empty entry"],
        ),
        ("/formwork plan -e ,staging", &["has an empty entry"]),
        ("/formwork plan -e a,,b", &["has an empty entry"]),
        (
            "/formwork plan -e staging, production",
            &["has an empty entry", "`-e staging,production`"],
        ),
    ]);
}

#[test]
fn stray_arguments_are_invalid() {
    check_invalid(&[
        (
            "/formwork plan staging",
            &[
                "Unexpected argument `staging` after `/formwork plan`",
                "`/formwork plan -e staging`",
            ],
        ),
        (
            "/formwork apply -e staging now",
            &["Unexpected argument `now`"],
        ),
        (
            "/formwork unlock staging",
            &["Unexpected argument `staging`"],
        ),
        ("/formwork plan -", &["Unexpected argument `-`"]),
        (
            "/formwork plan -e staging please",
            &["Unexpected argument `please`"],
        ),
    ]);
}

#[test]
fn names_are_validated() {
    check_invalid(&[
        (
            "/formwork plan -e staging/../production",
            &[
                "`staging/../production` is not a valid environment name",
                "`/` is not allowed",
            ],
        ),
        (
            "/formwork plan -e ..",
            &[
                "`..` is not a valid environment name",
                "start with a letter or digit",
            ],
        ),
        (
            "/formwork plan -e .hidden",
            &["start with a letter or digit"],
        ),
        (
            "/formwork plan -e=-x",
            &["`-x` is not a valid environment name"],
        ),
        ("/formwork plan -e _x", &["start with a letter or digit"]),
        (
            "/formwork plan -s vpc:1",
            &["`vpc:1` is not a valid stack name", "`:` is not allowed"],
        ),
        (
            "/formwork plan -s ${vpc}",
            &["`${vpc}` is not a valid stack name", "`$` is not allowed"],
        ),
        ("/formwork apply -e prodüction", &["`ü` is not allowed"]),
        (
            "/formwork apply -e “production”",
            &["`“` is not allowed", "Curly quotes are not quotes here"],
        ),
        (
            "/formwork apply -e stag\u{200b}ing",
            &["`stag\\u{200B}ing`", "the character U+200B is not allowed"],
        ),
        (
            "/formwork apply -e stag\u{202e}ing",
            &["`stag\\u{202E}ing`", "U+202E"],
        ),
    ]);
    let long = "x".repeat(129);
    let message = invalid(&format!("/formwork plan -e {long}"));
    assert!(message.contains("longer than 128 characters"), "{message}");
    assert!(
        message.contains('…'),
        "a long value is cut short: {message}"
    );
    assert!(!message.contains(&long), "{message}");
    assert_eq!(
        parse_comment(&format!("/formwork plan -e {}", "x".repeat(128))),
        plan(&[&"x".repeat(128)], &[])
    );
}

#[test]
fn html_comments_on_the_command_line_are_refused() {
    // GitHub would hide `-e production`: the command must not run with it.
    check_invalid(&[
        (
            "/formwork plan <!-- -e production -->",
            &["HTML comment", "`<!--`"],
        ),
        (
            "/formwork apply -e staging <!--\n-e production\n-->",
            &["HTML comment"],
        ),
        ("/formwork apply -e '<!--'", &["HTML comment"]),
    ]);
}

#[test]
fn messages_quote_user_text_in_code_spans_that_cannot_be_broken_out_of() {
    let cases: &[(&str, &str)] = &[
        ("/formwork plan -e a`b", "a`b"),
        ("/formwork plan -e 'a``b```c'", "a``b```c"),
        ("/formwork plan -e '`x'", "`x"),
        ("/formwork plan -e 'x`'", "x`"),
        ("/formwork plan -e '` @octocat `'", "` @octocat `"),
        ("/formwork plan -e @octocat", "@octocat"),
        (
            "/formwork plan -e '@formwork-dev/admins'",
            "@formwork-dev/admins",
        ),
        ("/formwork destroy@octocat", "destroy@octocat"),
        ("/formwork plan -e <img", "<img"),
        (
            "/formwork plan -e '<img src=x onerror=alert(1)>'",
            "<img src=x onerror=alert(1)>",
        ),
        ("/formwork plan -e '<b>@octocat</b>'", "<b>@octocat</b>"),
        (
            "/formwork plan -e '**bold** [link](https://x) #1 ![i](y)'",
            "**bold** [link](https://x) #1 ![i](y)",
        ),
        ("/formwork plan -e 'a|b'", "a|b"),
        ("/formwork plan -e '\\`'", "\\`"),
        ("/formwork ' plan '", " plan "),
        ("/formwork plan -e ' '", ""),
        ("/formwork @octocat", "@octocat"),
        ("/formwork plan --@octocat", "--@octocat"),
        ("/formwork plan `-e` staging", "`-e`"),
    ];
    for (body, value) in cases {
        let message = invalid(body);
        let (outside, spans) = code_spans(&message);
        if !value.is_empty() {
            assert!(
                spans.iter().any(|s| s == value),
                "{body:?}: no code span holds {value:?} exactly: {message:?} (spans {spans:?})"
            );
        }
        assert!(!outside.contains('@'), "{message}");
    }
}

#[test]
fn help_lists_every_command_and_its_examples_parse() {
    let help = help_markdown();
    for word in [
        "plan",
        "apply",
        "unlock",
        "help",
        "-e",
        "--env",
        "--environment",
        "-s",
        "--stack",
    ] {
        assert!(
            help.contains(&format!("`{word}`")) || help.contains(word),
            "{word}"
        );
    }
    let (_, spans) = code_spans(&help);
    let examples: Vec<&String> = spans
        .iter()
        .filter(|s| s.starts_with("/formwork"))
        .collect();
    assert!(examples.len() >= 6, "{examples:?}");
    for example in examples {
        assert!(
            matches!(parse_comment(example), Parsed::Command(_)),
            "the help's example {example:?} does not parse"
        );
    }
    assert_eq!(
        parse_comment("/formwork plan -e staging -s vpc,alb"),
        plan(&["staging"], &["vpc", "alb"])
    );
}

#[test]
fn names_and_what_touches_aws() {
    let cases = [
        (
            Command::Plan {
                environments: vec![],
                stacks: vec![],
            },
            "plan",
            true,
        ),
        (
            Command::Apply {
                environments: vec!["x".into()],
            },
            "apply",
            true,
        ),
        (
            Command::Unlock {
                environments: vec![],
            },
            "unlock",
            false,
        ),
        (Command::Help, "help", false),
    ];
    for (command, name, aws) in cases {
        assert_eq!(command.name(), name);
        assert_eq!(command.touches_aws(), aws, "{name}");
    }
}

/// A valid name.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,12}"
}

/// One way to write an option with its values.
fn option(
    long: &'static [&'static str],
    short: &'static str,
) -> impl Strategy<Value = (String, Vec<String>)> {
    (
        prop::collection::vec(name(), 1..4),
        0usize..7,
        prop::sample::select(long),
        prop::sample::select(&[" ", "  ", "\t", " \t "][..]),
    )
        .prop_map(move |(values, form, long, space)| {
            let list = values.join(",");
            let text = match form {
                0 => format!("{short}{space}{list}"),
                1 => format!("{long}{space}{list}"),
                2 => format!("{short}={list}"),
                3 => format!("{long}={list}"),
                4 => format!("{short}{space}\"{list}\""),
                5 => format!("{long}{space}'{list}'"),
                _ => format!(
                    "{short}={}",
                    values
                        .iter()
                        .map(|v| format!("\"{v}\""))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            (text, values)
        })
}

fn dedup(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_comment_parses_without_panicking(body in "\\PC{0,200}|(\\PC|\\n|\\r){0,200}") {
        if let Parsed::Invalid { message } = parse_comment(&body) {
            assert_markdown_safe(&message);
        }
    }

    #[test]
    fn any_command_line_parses_without_panicking_and_replies_safely(
        rest in "[ -~\\t\"'`\\\\@<>,=éü“\u{200b}\u{202e}-]{0,120}",
        prefix in prop::sample::select(&["", " ", "\n\r\n  "][..]),
        tail in prop::sample::select(&["", "\n", "\r\nmore text", "\nplease -e production"][..]),
    ) {
        let body = format!("{prefix}/formwork {rest}{tail}");
        match parse_comment(&body) {
            Parsed::NotACommand => prop_assert!(false, "{body:?} is a command"),
            Parsed::Invalid { message } => assert_markdown_safe(&message),
            Parsed::Command(command) => {
                let names: Vec<String> = match command {
                    Command::Plan { environments, stacks } => environments.into_iter().chain(stacks).collect(),
                    Command::Apply { environments } | Command::Unlock { environments } => environments,
                    Command::Continue { gate, environments } => std::iter::once(gate).chain(environments).collect(),
                    Command::Override { rule, environments } => std::iter::once(rule).chain(environments).collect(),
                    Command::Help => vec![],
                };
                for n in names {
                    prop_assert!(n.len() <= 128);
                    prop_assert!(n.starts_with(|c: char| c.is_ascii_alphanumeric()), "{n:?}");
                    prop_assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{n:?}");
                }
            }
        }
    }

    #[test]
    fn well_formed_commands_parse_to_what_they_say(
        sub in prop::sample::select(&["plan", "apply", "unlock"][..]),
        envs in prop::collection::vec(option(&["--env", "--environment"], "-e"), 0..4),
        stacks in prop::collection::vec(option(&["--stack"], "-s"), 0..4),
        order in any::<bool>(),
        space in prop::sample::select(&[" ", "   ", "\t"][..]),
    ) {
        let stacks = if sub == "plan" { stacks } else { vec![] };
        let mut words: Vec<String> = Vec::new();
        let env_words: Vec<String> = envs.iter().map(|(t, _)| t.clone()).collect();
        let stack_words: Vec<String> = stacks.iter().map(|(t, _)| t.clone()).collect();
        if order {
            words.extend(env_words);
            words.extend(stack_words);
        } else {
            words.extend(stack_words);
            words.extend(env_words);
        }
        let body = format!("/formwork{space}{sub}{space}{}", words.join(space));
        let environments = dedup(envs.into_iter().flat_map(|(_, v)| v));
        let expected = match sub {
            "plan" => Command::Plan { environments, stacks: dedup(stacks.into_iter().flat_map(|(_, v)| v)) },
            "apply" => Command::Apply { environments },
            _ => Command::Unlock { environments },
        };
        prop_assert_eq!(parse_comment(&body), Parsed::Command(expected), "{:?}", body);
    }
}

#[test]
fn continue_takes_a_gate_and_environments() {
    assert_eq!(
        parse_comment("/formwork continue upload-config -e staging"),
        Parsed::Command(Command::Continue {
            gate: "upload-config".into(),
            environments: vec!["staging".into()],
        })
    );
    assert_eq!(
        parse_comment("/formwork continue migrate-db"),
        Parsed::Command(Command::Continue {
            gate: "migrate-db".into(),
            environments: vec![],
        })
    );
    for (body, expect) in [
        ("/formwork continue", "needs the gate's name"),
        ("/formwork continue a b", "Unexpected argument"),
        ("/formwork continue -s vpc x", "does not take"),
        ("/formwork continue 'bad name'", "not a valid gate name"),
        ("/formwork contnue g", "Did you mean `continue`?"),
    ] {
        match parse_comment(body) {
            Parsed::Invalid { message } => assert!(message.contains(expect), "{body}: {message}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(matches!(parse_comment("/formwork continue g"), Parsed::Command(c) if c.touches_aws()));
}

#[test]
fn override_takes_a_rule_and_environments() {
    assert_eq!(
        parse_comment("/formwork override no_ssh_from_anywhere -e staging,production"),
        Parsed::Command(Command::Override {
            rule: "no_ssh_from_anywhere".into(),
            environments: vec!["staging".into(), "production".into()],
        })
    );
    assert_eq!(
        parse_comment("/formwork override -e prod s3_encrypted"),
        Parsed::Command(Command::Override {
            rule: "s3_encrypted".into(),
            environments: vec!["prod".into()],
        })
    );
    for (body, expect) in [
        ("/formwork override", "needs the policy rule's name"),
        ("/formwork override a b", "Unexpected argument"),
        ("/formwork override r -s vpc", "does not take"),
        (
            "/formwork override 'rm -rf'",
            "not a valid policy rule name",
        ),
        ("/formwork overide r", "Did you mean `override`?"),
    ] {
        match parse_comment(body) {
            Parsed::Invalid { message } => assert!(message.contains(expect), "{body}: {message}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(commands_help_lists("override"));
}

fn commands_help_lists(sub: &str) -> bool {
    formwork::github::commands::help_markdown().contains(&format!("`/formwork {sub} "))
}
