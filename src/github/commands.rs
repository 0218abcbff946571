//! `/formwork …` commands in pull-request comments, parsed.
//!
//! A comment is a command when its first non-blank line is `/formwork` followed by a space, a
//! tab or the end of the line; that line alone is the command, later lines are free text. What
//! GitHub shows as code, a quote or hidden text never runs. The words after `/formwork` are split
//! like a POSIX shell splits them (single and double quotes, backslash escapes) and checked
//! against a small grammar:
//!
//! ```text
//! /formwork plan   [-e ENV]... [-s STACK]...
//! /formwork apply  [-e ENV]...
//! /formwork unlock [-e ENV]...
//! /formwork help
//! ```
//!
//! Everything the user wrote that goes back into a reply ([`Parsed::Invalid`]) is put in a code
//! span it cannot break out of, so a reply renders no markup and pings nobody. The rules, with
//! examples, are in `docs/comment-commands.md`; [`help_markdown`] is the short form users see.

use crate::suggest;

/// What a comment is, read as a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An ordinary comment: nothing to do, nothing to reply.
    NotACommand,
    /// A well-formed command.
    Command(Command),
    /// A comment that is meant as a command but is malformed. `message` is one Markdown
    /// paragraph saying exactly what is wrong (safe to post as is); reply with it followed by
    /// [`help_markdown`].
    Invalid {
        /// What is wrong, as Markdown.
        message: String,
    },
}

/// A well-formed `/formwork` command.
///
/// An empty `environments` list means every environment the pull request affects; an empty
/// `stacks` list means every affected stack. Names are unique and in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `/formwork plan`: plan (create change sets for) the affected stacks.
    Plan {
        /// Environments named with `-e`, or empty for all affected ones.
        environments: Vec<String>,
        /// Stack keys named with `-s`, or empty for all affected ones.
        stacks: Vec<String>,
    },
    /// `/formwork apply`: execute the reviewed plan.
    Apply {
        /// Environments named with `-e`, or empty for all affected ones.
        environments: Vec<String>,
    },
    /// `/formwork unlock`: force environments' locks open.
    Unlock {
        /// Environments named with `-e`, or empty for all affected ones.
        environments: Vec<String>,
    },
    /// `/formwork continue GATE`: the manual step of a gate is done; apply goes on past it.
    Continue {
        /// The gate's name.
        gate: String,
        /// Environments named with `-e`, or empty for every environment waiting at the gate.
        environments: Vec<String>,
    },
    /// `/formwork override RULE`: let the plan of the pull request's head through the
    /// blocking policy rule `RULE` (recorded; needs maintain or admin permission).
    Override {
        /// The rule's name.
        rule: String,
        /// Environments named with `-e`, or empty for every environment where the rule blocks.
        environments: Vec<String>,
    },
    /// `/formwork help` (or `/formwork` alone, or `--help` anywhere): reply with
    /// [`help_markdown`].
    Help,
}

impl Command {
    /// Whether running the command calls AWS in the environments' accounts (CloudFormation,
    /// SSM, STS): `plan` and `apply` do; `unlock` changes only formwork's own lock record and
    /// `help` nothing. Who may run which command is the caller's decision.
    pub fn touches_aws(&self) -> bool {
        matches!(
            self,
            Command::Plan { .. } | Command::Apply { .. } | Command::Continue { .. }
        )
    }

    /// The subcommand's name: `plan`, `apply`, `unlock`, `continue`, `override` or `help`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Plan { .. } => "plan",
            Command::Apply { .. } => "apply",
            Command::Unlock { .. } => "unlock",
            Command::Continue { .. } => "continue",
            Command::Override { .. } => "override",
            Command::Help => "help",
        }
    }
}

/// Reads a comment body as a command. Never panics.
pub fn parse_comment(body: &str) -> Parsed {
    let Some(args) = command_line(body) else {
        return Parsed::NotACommand;
    };
    match parse_args(args) {
        Ok(command) => Parsed::Command(command),
        Err(message) => Parsed::Invalid { message },
    }
}

/// The reply to `/formwork help`, also appended to every [`Parsed::Invalid`] reply.
pub fn help_markdown() -> String {
    "\
**formwork commands.** Comment on a pull request with a command as the first line of the \
comment; anything on the lines after it is ignored.

| Command | What it does |
| --- | --- |
| `/formwork plan` | plan every environment and stack this pull request affects |
| `/formwork plan -e staging` | plan only the environment `staging` |
| `/formwork plan -e staging -s vpc,alb` | plan only the stacks `vpc` and `alb` of `staging` |
| `/formwork apply -e staging` | apply the reviewed plan of `staging` |
| `/formwork unlock -e staging` | force the lock of `staging` open |
| `/formwork continue upload-config` | the manual step of gate `upload-config` is done: apply goes on |
| `/formwork override ssh_not_open -e staging` | let this pull request's plan of `staging` through the blocking policy rule `ssh_not_open` (maintainers; recorded) |
| `/formwork help` | show this help |

Options: `-e`/`--env`/`--environment` names an environment and `-s`/`--stack` a stack (`plan` \
only). Repeat an option or give a comma-separated list (`-e staging,production`); `-e=staging` \
works too. Without `-e`, a command covers every environment the pull request affects. Names use \
letters, digits, `-`, `_` and `.`; quote values like in a shell (`-e \"staging\"`).

A command inside a code block, a quote (`>`), inline code or an HTML comment never runs.
"
    .to_string()
}

/// The literal that starts a command.
const PREFIX: &str = "/formwork";
/// The subcommands, for suggestions.
const SUBCOMMANDS: [&str; 6] = ["plan", "apply", "unlock", "continue", "override", "help"];
/// The longest name accepted for an environment or a stack.
const MAX_NAME: usize = 128;
/// How many characters of a user's text a message quotes before cutting it short.
const MAX_QUOTED: usize = 60;

/// The text after `/formwork` on the comment's first non-blank line, when that line is a
/// command: at most three columns of indentation (four make it an indented code block in
/// Markdown; a tab counts to the next multiple of four), then `/formwork`, then whitespace or
/// the end of the line.
fn command_line(body: &str) -> Option<&str> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    // CommonMark line endings: `\n`, `\r\n` and a lone `\r`.
    let first = body
        .split(['\n', '\r'])
        .find(|line| !line.trim_matches([' ', '\t']).is_empty())?;
    let mut column = 0;
    let mut rest = first;
    for (i, c) in first.char_indices() {
        match c {
            ' ' => column += 1,
            '\t' => column += 4 - column % 4,
            _ => {
                rest = &first[i..];
                break;
            }
        }
    }
    if column >= 4 {
        return None;
    }
    let after = rest.strip_prefix(PREFIX)?;
    match after.chars().next() {
        None => Some(after),
        Some(c) if c.is_whitespace() => Some(after),
        Some(_) => None,
    }
}

/// What an option names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Environment,
    Stack,
    Gate,
    Rule,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Environment => "environment",
            Kind::Stack => "stack",
            Kind::Gate => "gate",
            Kind::Rule => "policy rule",
        }
    }
}

/// The options of a subcommand, for suggestions.
fn options_of(sub: &str) -> &'static [&'static str] {
    const ENV: [&str; 5] = ["-e", "--env", "--environment", "-h", "--help"];
    const PLAN: [&str; 7] = [
        "-e",
        "--env",
        "--environment",
        "-s",
        "--stack",
        "-h",
        "--help",
    ];
    if sub == "plan" { &PLAN } else { &ENV }
}

/// The known options and what they name.
fn option_kind(flag: &str) -> Option<Kind> {
    match flag {
        "-e" | "--env" | "--environment" => Some(Kind::Environment),
        "-s" | "--stack" => Some(Kind::Stack),
        _ => None,
    }
}

/// Parses the words after `/formwork` into a command, or says what is wrong.
fn parse_args(line: &str) -> Result<Command, String> {
    if line.contains("<!--") {
        return Err(
            "The command line contains an HTML comment (`<!--`), which GitHub hides: \
                    write the command without it."
                .into(),
        );
    }
    let words = split_words(line)?;
    if words.iter().any(|w| w == "-h" || w == "--help") {
        return Ok(Command::Help);
    }
    let Some((sub, rest)) = words.split_first() else {
        return Ok(Command::Help);
    };
    let Some(sub) = subcommand(sub, &words)? else {
        return Ok(Command::Help);
    };
    let arguments = read_arguments(sub, rest)?;
    command_of(sub, arguments)
}

/// The subcommand a command starts with (`None` for `help`), or what is wrong with it; `words`
/// are all the words, for the example of a command that starts with an option.
fn subcommand<'w>(word: &'w str, words: &[String]) -> Result<Option<&'w str>, String> {
    match word {
        "help" => Ok(None),
        "plan" | "apply" | "unlock" | "continue" | "override" => Ok(Some(word)),
        w if w.starts_with('-') && w.len() > 1 => Err(format!(
            "`/formwork` needs a command before its options, e.g. {}. The commands are \
             `plan`, `apply`, `unlock`, `continue`, `override` and `help`.",
            code(&format!("/formwork plan {}", words.join(" ")))
        )),
        w => {
            let hint = match suggest::nearest(w, SUBCOMMANDS) {
                Some(near) => format!(" Did you mean `{near}`?"),
                None => String::new(),
            };
            Err(format!(
                "Unknown command {}.{hint} The commands are `plan`, `apply`, `unlock`, `continue`, `override` and `help`.",
                code(w)
            ))
        }
    }
}

/// What the words after a subcommand name.
#[derive(Default)]
struct Arguments {
    environments: Vec<String>,
    stacks: Vec<String>,
    /// The gate of `continue`, the rule of `override`: its first word that is not an option.
    gate: Option<String>,
}

/// Reads the words after subcommand `sub`: its options and their values (and the gate of
/// `continue`).
fn read_arguments(sub: &str, rest: &[String]) -> Result<Arguments, String> {
    let mut arguments = Arguments::default();
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        i += 1;
        if matches!(sub, "continue" | "override")
            && arguments.gate.is_none()
            && !word.starts_with('-')
        {
            check_name(
                if sub == "continue" {
                    Kind::Gate
                } else {
                    Kind::Rule
                },
                word,
            )?;
            arguments.gate = Some(word.clone());
            continue;
        }
        if !word.starts_with('-') || word == "-" {
            return Err(unexpected_argument(sub, word));
        }
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (word.as_str(), None),
        };
        let kind = option_of(sub, flag)?;
        let value = match inline {
            Some(value) => value,
            None => {
                let value = option_value(flag, kind, rest.get(i))?;
                i += 1;
                value
            }
        };
        let list = match kind {
            Kind::Stack => &mut arguments.stacks,
            Kind::Environment | Kind::Gate | Kind::Rule => &mut arguments.environments,
        };
        add_names(flag, kind, value, list)?;
    }
    Ok(arguments)
}

/// The message for a word that is neither an option nor the value of one.
fn unexpected_argument(sub: &str, word: &str) -> String {
    format!(
        "Unexpected argument {} after `/formwork {sub}`: name environments with `-e`{}, \
         e.g. `/formwork {sub} -e staging`.",
        code(word),
        if sub == "plan" {
            " and stacks with `-s`"
        } else {
            ""
        },
    )
}

/// What option `flag` names, when subcommand `sub` takes it.
fn option_of(sub: &str, flag: &str) -> Result<Kind, String> {
    let Some(kind) = option_kind(flag) else {
        return Err(unknown_option(sub, flag));
    };
    if kind == Kind::Stack && sub != "plan" {
        return Err(format!(
            "`/formwork {sub}` does not take {}: it works on whole environments. Stacks \
             can be chosen with `plan` only (`/formwork plan -e staging -s vpc`).",
            code(flag)
        ));
    }
    Ok(kind)
}

/// The value of option `flag` given as the word after it (`next`), which must not be another
/// option.
fn option_value<'w>(flag: &str, kind: Kind, next: Option<&'w String>) -> Result<&'w str, String> {
    match next {
        None => Err(format!(
            "{} needs {} {} name after it, e.g. `{flag} {}`.",
            code(flag),
            article(kind),
            kind.noun(),
            example(kind)
        )),
        Some(next) if next.starts_with('-') && next.len() > 1 => Err(format!(
            "{} needs {} {} name after it, but the next word is the option {}.",
            code(flag),
            article(kind),
            kind.noun(),
            code(next)
        )),
        Some(next) => Ok(next.as_str()),
    }
}

/// The command subcommand `sub` makes with its arguments.
fn command_of(sub: &str, arguments: Arguments) -> Result<Command, String> {
    let Arguments {
        environments,
        stacks,
        gate,
    } = arguments;
    Ok(match sub {
        "plan" => Command::Plan {
            environments,
            stacks,
        },
        "apply" => Command::Apply { environments },
        "continue" => Command::Continue {
            gate: gate.ok_or_else(|| {
                "`/formwork continue` needs the gate's name, e.g. `/formwork continue upload-config`."
                    .to_string()
            })?,
            environments,
        },
        "override" => Command::Override {
            rule: gate.ok_or_else(|| {
                "`/formwork override` needs the policy rule's name, e.g. `/formwork override ssh_not_open -e staging`."
                    .to_string()
            })?,
            environments,
        },
        _ => Command::Unlock { environments },
    })
}

fn article(kind: Kind) -> &'static str {
    match kind {
        Kind::Environment => "an",
        Kind::Stack | Kind::Gate | Kind::Rule => "a",
    }
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Environment => "staging",
        Kind::Stack => "vpc",
        Kind::Gate => "upload-config",
        Kind::Rule => "ssh_not_open",
    }
}

/// The message for an option no subcommand or not this one takes.
fn unknown_option(sub: &str, flag: &str) -> String {
    let own = options_of(sub);
    let hint = match suggest::nearest(flag, own.iter().copied()) {
        Some(near) => format!(" Did you mean `{near}`?"),
        None => match suggest::nearest(flag, options_of("plan").iter().copied()) {
            Some(near) if option_kind(near) == Some(Kind::Stack) => {
                format!(" (`{near}` works with `plan` only.)")
            }
            _ => String::new(),
        },
    };
    let known = if sub == "plan" {
        "`-e`/`--env`/`--environment` and `-s`/`--stack`"
    } else {
        "`-e`/`--env`/`--environment`"
    };
    format!(
        "Unknown option {} for `/formwork {sub}`.{hint} Its options are {known}.",
        code(flag)
    )
}

/// Splits a comma-separated option value into names, checks each and adds the new ones.
fn add_names(flag: &str, kind: Kind, value: &str, list: &mut Vec<String>) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!(
            "{} was given an empty {} name.",
            code(flag),
            kind.noun()
        ));
    }
    for item in value.split(',') {
        let name = item.trim_matches([' ', '\t']);
        if name.is_empty() {
            return Err(format!(
                "The list {} after {} has an empty entry: write lists without spaces or a \
                 trailing comma, e.g. `{flag} {}`.",
                code(value),
                code(flag),
                match kind {
                    Kind::Environment => "staging,production",
                    Kind::Stack => "vpc,alb",
                    Kind::Gate | Kind::Rule => "upload-config",
                }
            ));
        }
        check_name(kind, name)?;
        if !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }
    Ok(())
}

/// Environment and stack names: an ASCII letter or digit, then ASCII letters, digits, `-`,
/// `_` and `.`, at most [`MAX_NAME`] characters.
fn check_name(kind: Kind, name: &str) -> Result<(), String> {
    const RULE: &str =
        "names use letters, digits, `-`, `_` and `.`, and start with a letter or digit";
    let noun = kind.noun();
    if name.chars().count() > MAX_NAME {
        return Err(format!(
            "{} is not a valid {noun} name: it is longer than {MAX_NAME} characters.",
            code(name)
        ));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(bad) = name.chars().find(|&c| !ok(c)) {
        let curly = if matches!(bad, '‘' | '’' | '“' | '”') {
            " Curly quotes are not quotes here: use straight ones (`'` or `\"`)."
        } else {
            ""
        };
        return Err(format!(
            "{} is not a valid {noun} name: {} is not allowed ({RULE}).{curly}",
            code(name),
            describe_char(bad)
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "{} is not a valid {noun} name: {RULE}.",
            code(name)
        ));
    }
    Ok(())
}

/// A character for a message: in a code span, or as `U+XXXX` when it is invisible.
fn describe_char(c: char) -> String {
    if c.is_whitespace() || invisible(c) {
        let what = if c == ' ' { " (a space)" } else { "" };
        format!("the character U+{:04X}{what}", c as u32)
    } else {
        code(&c.to_string())
    }
}

/// Splits the command line into words like a POSIX shell (shell-words): whitespace separates
/// words outside quotes; `'…'` keeps everything literally; `"…"` keeps everything but `\"`,
/// `\\`, `` \` `` and `\$`; outside quotes `\x` stands for `x`. A line that does not split says
/// which quote is left open.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    // Any whitespace separates words (a no-break space pasted from a web page too); no name
    // may hold whitespace, so inside quotes it changes nothing that could be valid.
    let line: String = line
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    shell_words::split(&line).map_err(|_| why_unsplit(&line))
}

/// Why a line does not split: the quote left open (found as the shell reads it).
fn why_unsplit(line: &str) -> String {
    let mut chars = line.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                // The escaped character, whatever it is.
                chars.next();
            }
            '\'' if !chars.any(|(_, c)| c == '\'') => {
                return unterminated("single", '\'', &line[at..]);
            }
            '"' => loop {
                match chars.next() {
                    None => return unterminated("double", '"', &line[at..]),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => {
                        chars.next();
                    }
                    Some(_) => {}
                }
            },
            _ => {}
        }
    }
    "A quote is never closed. Close it, or remove it.".into()
}

fn unterminated(which: &str, quote: char, from: &str) -> String {
    format!(
        "Unterminated {which} quote: the `{quote}` that starts {} is never closed. Close it, \
         or remove it.",
        code(from.trim_end())
    )
}

/// Characters that render as nothing or reorder text: shown as `U+XXXX` in messages.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E0FFF}')
}

/// A user's text as it may appear in a message: invisible characters as `\u{…}`, cut after
/// [`MAX_QUOTED`] characters.
fn visible(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MAX_QUOTED {
            out.push('…');
            break;
        }
        if invisible(c) {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` as a Markdown code span it cannot break out of: the fence is one backtick longer
/// than the longest run of backticks inside, padded with a space when the text starts or ends
/// with a backtick or with spaces (CommonMark strips one space from each side). Inside a code
/// span, `<`, `@`, `#`, `*` and the like are plain text: no HTML, no mentions, no links.
fn code(text: &str) -> String {
    let shown = visible(text);
    if shown.is_empty() {
        return "(nothing)".into();
    }
    let fence = "`".repeat(crate::render::markdown::longest_backtick_run(&shown) + 1);
    let all_spaces = shown.chars().all(|c| c == ' ');
    let pad = shown.starts_with('`')
        || shown.ends_with('`')
        || (!all_spaces && shown.starts_with(' ') && shown.ends_with(' '));
    if pad {
        format!("{fence} {shown} {fence}")
    } else {
        format!("{fence}{shown}{fence}")
    }
}

/// The reply to a command whose author may not run it (`permission` as GitHub names it).
pub fn refusal_markdown(user: &str, command: &str, permission: &str) -> String {
    format!(
        "Sorry @{user}, `/formwork {command}` needs write, maintain or admin permission on this repository, and yours is {permission}. Someone who has it can run the command."
    )
}

/// The reply to `/formwork apply` where applying before merge is off.
pub fn apply_before_merge_off_markdown() -> String {
    "Applying before merge is off for this repository: merge the pull request and formwork applies its reviewed plan. (The GitHub Action's `apply-before-merge: true`, or `github.apply_before_merge: true` in the settings of `formwork serve`, turns it on.)".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_are_fenced_longer_than_any_backtick_run() {
        assert_eq!(code("abc"), "`abc`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x``"), "``` `x`` ```");
        assert_eq!(code(" x "), "`  x  `");
        assert_eq!(code("   "), "`   `");
        assert_eq!(code(""), "(nothing)");
        assert_eq!(code("a\u{202E}b"), "`a\\u{202E}b`");
        assert_eq!(
            code(&"x".repeat(100)),
            format!("`{}…`", "x".repeat(MAX_QUOTED))
        );
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"  plan -e "a b" 'c"d' e\ f "g\"h\\i\j" x'y'"z" "#).unwrap(),
            ["plan", "-e", "a b", "c\"d", "e f", "g\"h\\i\\j", "xyz"]
        );
        assert!(
            split_words("plan -e 'x")
                .unwrap_err()
                .contains("single quote")
        );
        assert!(
            split_words("plan -e \"x")
                .unwrap_err()
                .contains("double quote")
        );
        // A backslash at the end stands for itself, as in a shell.
        assert_eq!(split_words("plan \\").unwrap(), ["plan", "\\"]);
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), [""]);
    }

    #[test]
    fn command_line_follows_markdown_indentation() {
        assert_eq!(command_line("/formwork plan"), Some(" plan"));
        assert_eq!(command_line("   /formwork"), Some(""));
        assert_eq!(command_line("    /formwork plan"), None);
        assert_eq!(command_line("\t/formwork plan"), None);
        assert_eq!(
            command_line("\n \t\n/formwork\tapply\r\nmore"),
            Some("\tapply")
        );
        assert_eq!(command_line("/formworks"), None);
        assert_eq!(command_line("\u{feff}/formwork help"), Some(" help"));
        assert_eq!(command_line(""), None);
    }
}
