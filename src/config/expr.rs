//! Expressions inside config strings: `${stack.Output}`, `${var.NAME}`, `${env.name}`,
//! `${env.region}`, `${env.account}`, `${ssm:/path}`, `${secretsmanager:NAME[:KEY]}`,
//! `${external:stack-name.Output}` and `${env:ENVIRONMENT.stack.Output}` (an SSM path, a
//! secret's name and an external stack name may themselves hold `${var.…}` and `${env.…}`). `$${` is a literal `${`.
//!
//! References to stacks outside the environment are parsed in [`elsewhere`], Secrets Manager
//! references in [`secret`].

use std::fmt;

mod elsewhere;
mod secret;

pub use elsewhere::{ENV_OUTPUTS, is_environment_name, is_stack_name};
use elsewhere::{parse_env_output, parse_external};
pub use secret::{SECRET_NAMES, is_secret_name};
use secret::{SECRETS_PREFIX, parse_secret};

/// A parsed string: literal text and references, in order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Expr {
    pub segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Text(String),
    Ref(Reference),
}

/// What a `${…}` refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `${stack.Output}`: an output of another stack of the same environment.
    Output { stack: String, output: String },
    /// `${stack.stack_name}`: the CloudFormation stack name of a stack of the same environment,
    /// known from the config (for templates that import another stack's exports by its name).
    /// Like an output, it orders the stacks. `stack_name` can be no output's name: output
    /// logical ids are letters and digits only.
    StackName { stack: String },
    /// `${var.NAME}`.
    Var(String),
    /// `${env.name}`, `${env.region}`, `${env.account}`.
    Env(EnvFact),
    /// `${ssm:/path}`: the value of an SSM parameter, read when planning.
    Ssm(Expr),
    /// `${external:stack-name.Output}`: an output of a stack outside this environment (deployed
    /// by another environment, or by something else) in the same account and region, read when
    /// planning. No ordering: that stack must exist. The name may hold `${var.…}` and `${env.…}`.
    External { stack_name: Expr, output: String },
    /// `${secretsmanager:NAME}` or `${secretsmanager:NAME:KEY}`: a secret of AWS Secrets
    /// Manager (its string, or one key of it read as a JSON object), read when planning with the
    /// environment's credentials; always secret. The name may hold `${var.…}` and `${env.…}`.
    Secret { name: Expr, key: Option<String> },
    /// `${env:ENVIRONMENT.stack.Output}`: an output of a stack of another environment of the
    /// config repository, read when planning with that environment's credentials (its account,
    /// region and role). No ordering: that environment is applied by its own runs.
    EnvOutput {
        environment: String,
        stack: String,
        output: String,
    },
}

/// The facts of an environment that expressions can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnvFact {
    Name,
    Region,
    Account,
}

impl EnvFact {
    pub const ALL: [&'static str; 3] = ["name", "region", "account"];

    pub fn as_str(self) -> &'static str {
        match self {
            EnvFact::Name => "name",
            EnvFact::Region => "region",
            EnvFact::Account => "account",
        }
    }
}

/// A malformed expression: what is wrong, the character offset in the string where, and a hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub message: String,
    /// Offset in characters from the start of the string.
    pub offset: usize,
    pub len: usize,
    pub help: Option<String>,
}

const FORMS: &str = "expressions are `${stack.Output}`, `${stack.stack_name}`, `${var.NAME}`, `${env.name}`, `${env.region}`, `${env.account}`, `${ssm:/path}`, `${secretsmanager:NAME[:KEY]}`, `${external:stack-name.Output}` or `${env:ENVIRONMENT.stack.Output}`; write `$${` for a literal `${`";

/// What follows a stack's key in `${stack.stack_name}`.
pub const STACK_NAME: &str = "stack_name";

/// Parses a config string into literal text and references.
pub fn parse(s: &str) -> Result<Expr, ExprError> {
    let chars: Vec<char> = s.chars().collect();
    let (expr, end) = parse_until(&chars, 0, false)?;
    debug_assert_eq!(end, chars.len());
    Ok(expr)
}

/// Parses from `pos` until the end of input, or (when `nested`) until the `}` closing the
/// enclosing `${`; returns the expression and the position after it.
fn parse_until(chars: &[char], mut pos: usize, nested: bool) -> Result<(Expr, usize), ExprError> {
    let mut segments = Vec::new();
    let mut text = String::new();
    while pos < chars.len() {
        let c = chars[pos];
        if c == '$' && chars.get(pos + 1) == Some(&'$') && chars.get(pos + 2) == Some(&'{') {
            text.push_str("${");
            pos += 3;
        } else if c == '$' && chars.get(pos + 1) == Some(&'{') {
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            let (r, next) = parse_ref(chars, pos)?;
            segments.push(Segment::Ref(r));
            pos = next;
        } else if nested && c == '}' {
            if !text.is_empty() {
                segments.push(Segment::Text(text));
            }
            return Ok((Expr { segments }, pos));
        } else {
            text.push(c);
            pos += 1;
        }
    }
    if !text.is_empty() {
        segments.push(Segment::Text(text));
    }
    Ok((Expr { segments }, pos))
}

fn is_stack_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// The error of a `${` at `start` that is never closed.
fn unclosed(start: usize) -> ExprError {
    ExprError {
        message: "`${` is never closed".into(),
        offset: start,
        len: 2,
        help: Some("add the closing `}`, or write `$${` for a literal `${`".into()),
    }
}

/// Parses `${ssm:…}` from its path at `from` (the reference starts at `start`).
fn parse_ssm(chars: &[char], start: usize, from: usize) -> Result<(Reference, usize), ExprError> {
    let (path, end) = parse_until(chars, from, true)?;
    if end >= chars.len() {
        return Err(unclosed(start));
    }
    if path.segments.is_empty() {
        return Err(ExprError {
            message: "`${ssm:}` names no parameter".into(),
            offset: start,
            len: end + 1 - start,
            help: Some("write `${ssm:/path/to/parameter}`".into()),
        });
    }
    for seg in &path.segments {
        if let Segment::Ref(
            r @ (Reference::Output { .. }
            | Reference::StackName { .. }
            | Reference::Ssm(_)
            | Reference::Secret { .. }
            | Reference::External { .. }
            | Reference::EnvOutput { .. }),
        ) = seg
        {
            return Err(ExprError {
                message: format!("an SSM parameter path cannot contain `{r}`"),
                offset: start,
                len: end + 1 - start,
                help: Some("SSM paths may use `${var.NAME}` and `${env.…}` only".into()),
            });
        }
    }
    check_ssm_chars(chars, from, end)?;
    if let Some(name) = path.as_literal()
        && let Err(message) = check_ssm_name(&name)
    {
        return Err(ExprError {
            message,
            offset: start,
            len: end + 1 - start,
            help: Some(SSM_NAMES.into()),
        });
    }
    Ok((Reference::Ssm(path), end + 1))
}

/// Parses the reference starting with `${` at `start`.
fn parse_ref(chars: &[char], start: usize) -> Result<(Reference, usize), ExprError> {
    let body = start + 2;
    if chars[body..].starts_with(&['s', 's', 'm', ':']) {
        return parse_ssm(chars, start, body + 4);
    }
    if chars[body..].starts_with(&['e', 'x', 't', 'e', 'r', 'n', 'a', 'l', ':']) {
        return parse_external(chars, start, body + 9);
    }
    if chars[body..].starts_with(&['e', 'n', 'v', ':']) {
        return parse_env_output(chars, start, body + 4);
    }
    let secrets: Vec<char> = SECRETS_PREFIX.chars().collect();
    if chars[body..].starts_with(&secrets) {
        return parse_secret(chars, start, body + secrets.len());
    }
    let Some(close) = chars[body..].iter().position(|&c| c == '}') else {
        return Err(unclosed(start));
    };
    let end = body + close;
    let inner: String = chars[body..end].iter().collect();
    let err = |message: String, help: Option<String>| ExprError {
        message,
        offset: start,
        len: end + 1 - start,
        help,
    };
    let Some((head, tail)) = inner.split_once('.') else {
        return Err(err(
            format!("`${{{inner}}}` is not an expression formwork knows"),
            Some(FORMS.into()),
        ));
    };
    let r = match head {
        "var" => {
            if tail.is_empty() || !tail.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(
                    format!("`{tail}` is not a variable name"),
                    Some("variable names use letters, digits and `_`".into()),
                ));
            }
            Reference::Var(tail.to_string())
        }
        "env" => {
            match tail {
                "name" => Reference::Env(EnvFact::Name),
                "region" => Reference::Env(EnvFact::Region),
                "account" => Reference::Env(EnvFact::Account),
                other => {
                    let near = crate::suggest::nearest(other, EnvFact::ALL)
                        .map(|n| format!("; did you mean `env.{n}`?"))
                        .unwrap_or_default();
                    return Err(err(
                    format!("`env.{other}` is not an environment fact{near}"),
                    Some("environment facts are `${env.name}`, `${env.region}` and `${env.account}`".into()),
                ));
                }
            }
        }
        stack => {
            if stack.is_empty() || !stack.chars().all(is_stack_char) {
                return Err(err(
                    format!("`{stack}` is not a stack key"),
                    Some(FORMS.into()),
                ));
            }
            if tail == STACK_NAME {
                return Ok((
                    Reference::StackName {
                        stack: stack.to_string(),
                    },
                    end + 1,
                ));
            }
            if tail.is_empty() || !tail.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(err(
                    format!("`{tail}` is not an output name"),
                    Some("output names use letters and digits only, as in `${vpc.VpcId}`".into()),
                ));
            }
            Reference::Output {
                stack: stack.to_string(),
                output: tail.to_string(),
            }
        }
    };
    Ok((r, end + 1))
}

/// How SSM parameter names are written, for help texts.
pub const SSM_NAMES: &str = "SSM parameter names use letters, digits, `_`, `.`, `-` and `/` between the levels of a hierarchy (`/team/app/password`), with an optional `:VERSION` or `:LABEL` at the end";

/// The most levels an SSM parameter hierarchy may have (AWS Systems Manager's limit).
pub const SSM_MAX_LEVELS: usize = 15;

/// The longest SSM parameter name AWS Systems Manager accepts, in characters.
pub const SSM_MAX_NAME: usize = 1011;

/// Whether `c` may appear in an SSM parameter name (`:` only before a version or label, and in
/// an ARN).
fn is_ssm_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':')
}

/// A character for messages: `" "` is "a space", and so on.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        '\'' | '"' => format!("a quote (`{c}`)"),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

/// Checks the written characters of an SSM path from `from` to `end` (the closing `}`),
/// skipping the `${…}` inside it: the first character no SSM name may hold is an error
/// pointing at it.
fn check_ssm_chars(chars: &[char], from: usize, end: usize) -> Result<(), ExprError> {
    let mut i = from;
    while i < end {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            i += chars[i..end]
                .iter()
                .position(|&c| c == '}')
                .unwrap_or(end - i)
                + 1;
            continue;
        }
        let c = chars[i];
        if !is_ssm_char(c) {
            return Err(ExprError {
                message: format!("an SSM parameter name cannot contain {}", describe_char(c)),
                offset: i,
                len: 1,
                help: Some(SSM_NAMES.into()),
            });
        }
        i += 1;
    }
    Ok(())
}

/// Checks a whole SSM parameter name by AWS Systems Manager's rules: a name (`password`) or a
/// hierarchy (`/team/app/password`, at most 15 levels, none empty, `.` or `..`), or the ARN of
/// a shared parameter; optionally `:VERSION` or `:LABEL`; at most 1011 characters. Names under
/// `/aws/` (AWS's public parameters) are read like any other.
pub fn check_ssm_name(written: &str) -> Result<(), String> {
    let quoted = format!("`{written}`");
    if written.is_empty() {
        return Err("the SSM parameter name is empty".into());
    }
    if written.chars().count() > SSM_MAX_NAME {
        return Err(format!(
            "the SSM parameter name is {} characters long; AWS allows at most {SSM_MAX_NAME}",
            written.chars().count()
        ));
    }
    if let Some(c) = written.chars().find(|&c| !is_ssm_char(c)) {
        return Err(format!(
            "the SSM parameter name {quoted} contains {}",
            describe_char(c)
        ));
    }
    // The ARN of a parameter shared from another account: arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME.
    let name = match written.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            match parts.as_slice() {
                [_, "ssm", _, _, resource] if resource.starts_with("parameter/") => {
                    &resource["parameter".len()..]
                }
                _ => {
                    return Err(format!(
                        "{quoted} is not the ARN of an SSM parameter (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)"
                    ));
                }
            }
        }
        None => written,
    };
    let name = match name.rsplit_once(':') {
        Some((n, selector)) => {
            if selector.is_empty() || n.contains(':') {
                return Err(format!(
                    "{quoted}: `:` may only come once, before a version number or a label"
                ));
            }
            let label = selector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !label || selector.contains('/') {
                return Err(format!(
                    "{quoted}: `{selector}` is neither a version nor a label"
                ));
            }
            n
        }
        None => name,
    };
    if name.is_empty() {
        return Err(format!("{quoted} names no parameter"));
    }
    if !name.contains('/') {
        return Ok(());
    }
    let Some(levels) = name.strip_prefix('/') else {
        return Err(format!(
            "{quoted} is a hierarchy that does not begin with `/`; write `/{name}`"
        ));
    };
    let levels: Vec<&str> = levels.split('/').collect();
    if let Some(bad) = levels
        .iter()
        .find(|l| l.is_empty() || **l == "." || **l == "..")
    {
        let what = if bad.is_empty() {
            "an empty level (`//`, or `/` at the end)".to_string()
        } else {
            format!("a level `{bad}`")
        };
        return Err(format!(
            "{quoted} has {what}; SSM names are not file paths, each level is a name"
        ));
    }
    if levels.len() > SSM_MAX_LEVELS {
        return Err(format!(
            "{quoted} has {} levels; AWS allows at most {SSM_MAX_LEVELS}",
            levels.len()
        ));
    }
    Ok(())
}

impl Expr {
    /// A string with no references.
    pub fn literal(s: &str) -> Expr {
        Expr {
            segments: if s.is_empty() {
                vec![]
            } else {
                vec![Segment::Text(s.to_string())]
            },
        }
    }

    /// The text, when the expression holds no references.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Ref(_) => return None,
            }
        }
        Some(out)
    }

    /// Every reference, including those inside SSM paths.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        for s in &self.segments {
            if let Segment::Ref(r) = s {
                out.push(r);
                match r {
                    Reference::Ssm(path) => out.extend(path.references()),
                    Reference::Secret { name, .. } => out.extend(name.references()),
                    Reference::External { stack_name, .. } => out.extend(stack_name.references()),
                    _ => {}
                }
            }
        }
        out
    }

    /// Replaces references that `f` can answer (returning `Some(text)`) by their text, leaving
    /// the others, and joins adjacent text.
    pub fn substitute(&self, f: &mut dyn FnMut(&Reference) -> Option<String>) -> Expr {
        let mut out: Vec<Segment> = Vec::new();
        let push_text = |out: &mut Vec<Segment>, t: &str| {
            if let Some(Segment::Text(prev)) = out.last_mut() {
                prev.push_str(t);
            } else if !t.is_empty() {
                out.push(Segment::Text(t.to_string()));
            }
        };
        for s in &self.segments {
            match s {
                Segment::Text(t) => push_text(&mut out, t),
                Segment::Ref(Reference::Ssm(path)) => {
                    out.push(Segment::Ref(Reference::Ssm(path.substitute(f))))
                }
                Segment::Ref(Reference::Secret { name, key }) => {
                    out.push(Segment::Ref(Reference::Secret {
                        name: name.substitute(f),
                        key: key.clone(),
                    }))
                }
                Segment::Ref(Reference::External { stack_name, output }) => {
                    out.push(Segment::Ref(Reference::External {
                        stack_name: stack_name.substitute(f),
                        output: output.clone(),
                    }))
                }
                Segment::Ref(r) => match f(r) {
                    Some(t) => push_text(&mut out, &t),
                    None => out.push(Segment::Ref(r.clone())),
                },
            }
        }
        Expr { segments: out }
    }
}

impl Expr {
    /// Replaces the references `f` answers with `Some(expr)` by that expression's segments
    /// (a variable by its value, references and all), leaving the others, and joins adjacent
    /// text. Only references standing in the string itself are offered to `f`, not those inside
    /// an SSM path, a secret's name or an external stack's name.
    pub fn splice(&self, f: &mut dyn FnMut(&Reference) -> Option<Expr>) -> Expr {
        let mut segments = Vec::new();
        for s in &self.segments {
            match s {
                Segment::Ref(r) => match f(r) {
                    Some(e) => segments.extend(e.segments),
                    None => segments.push(s.clone()),
                },
                Segment::Text(_) => segments.push(s.clone()),
            }
        }
        Expr { segments }.substitute(&mut |_| None)
    }
}

fn escape_text(t: &str) -> String {
    t.replace("${", "$${")
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Output { stack, output } => write!(f, "${{{stack}.{output}}}"),
            Reference::StackName { stack } => write!(f, "${{{stack}.{STACK_NAME}}}"),
            Reference::Var(v) => write!(f, "${{var.{v}}}"),
            Reference::Env(e) => write!(f, "${{env.{}}}", e.as_str()),
            Reference::Ssm(path) => write!(f, "${{ssm:{path}}}"),
            Reference::Secret { name, key: None } => write!(f, "${{secretsmanager:{name}}}"),
            Reference::Secret { name, key: Some(k) } => write!(f, "${{secretsmanager:{name}:{k}}}"),
            Reference::External { stack_name, output } => {
                write!(f, "${{external:{stack_name}.{output}}}")
            }
            Reference::EnvOutput {
                environment,
                stack,
                output,
            } => write!(f, "${{env:{environment}.{stack}.{output}}}"),
        }
    }
}

/// Writes the expression back in config syntax (`redis://${elasticache.PrimaryEndpoint}`).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            match s {
                Segment::Text(t) => f.write_str(&escape_text(t))?,
                Segment::Ref(r) => write!(f, "{r}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn splice_puts_a_variable_s_expression_in_its_place() {
        let value = parse("${db.Endpoint}:${ssm:/p/${env.name}}").unwrap();
        let e = parse("postgres://${var.Db}/${var.Name}-${ssm:/x/${var.Db}}").unwrap();
        let spliced = e.splice(&mut |r| match r {
            Reference::Var(v) if v == "Db" => Some(value.clone()),
            _ => None,
        });
        assert_eq!(
            spliced.to_string(),
            "postgres://${db.Endpoint}:${ssm:/p/${env.name}}/${var.Name}-${ssm:/x/${var.Db}}"
        );
        // Text around the spliced value is joined with it.
        let text = parse("a-${var.T}-b").unwrap();
        let joined = text.splice(&mut |_| Some(Expr::literal("t")));
        assert_eq!(joined, Expr::literal("a-t-b"));
    }

    #[test]
    fn ssm_names_follow_aws_rules() {
        for ok in [
            "password",
            "/team/app/password",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "/team/app/password:12",
            "/team/app/password:prod-label_1.0",
            "arn:aws:ssm:eu-west-1:123456789012:parameter/shared/key",
            "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/shared/key:2",
        ] {
            assert_eq!(check_ssm_name(ok), Ok(()), "{ok}");
        }
        let long = format!("/{}", "a".repeat(SSM_MAX_NAME));
        for (bad, says) in [
            ("", "is empty"),
            ("/a b", "contains a space"),
            ("/a\"b", "contains a quote"),
            ("/a/../b", "a level `..`"),
            ("/a/./b", "a level `.`"),
            ("/a//b", "an empty level"),
            ("/a/b/", "an empty level"),
            ("a/b", "does not begin with `/`"),
            ("/a:b:c", "`:` may only come once"),
            ("/a:", "`:` may only come once"),
            ("arn:aws:s3:::bucket", "is not the ARN of an SSM parameter"),
            (long.as_str(), "AWS allows at most 1011"),
        ] {
            let e = check_ssm_name(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    fn out(stack: &str, output: &str) -> Segment {
        Segment::Ref(Reference::Output {
            stack: stack.into(),
            output: output.into(),
        })
    }

    #[test]
    fn composes_text_and_references() {
        let e = parse("redis://${elasticache.PrimaryEndpoint}:${elasticache.Port}").unwrap();
        assert_eq!(
            e.segments,
            vec![
                Segment::Text("redis://".into()),
                out("elasticache", "PrimaryEndpoint"),
                Segment::Text(":".into()),
                out("elasticache", "Port"),
            ]
        );
        assert_eq!(
            e.to_string(),
            "redis://${elasticache.PrimaryEndpoint}:${elasticache.Port}"
        );
    }

    #[test]
    fn ssm_paths_nest_environment_facts() {
        let e = parse("${ssm:/placeos/${env.name}/admin-password}").unwrap();
        let Segment::Ref(Reference::Ssm(path)) = &e.segments[0] else {
            panic!("not ssm: {e:?}")
        };
        assert_eq!(
            path.segments,
            vec![
                Segment::Text("/placeos/".into()),
                Segment::Ref(Reference::Env(EnvFact::Name)),
                Segment::Text("/admin-password".into()),
            ]
        );
        let resolved = e.substitute(&mut |r| match r {
            Reference::Env(EnvFact::Name) => Some("staging".into()),
            _ => None,
        });
        assert_eq!(
            resolved.to_string(),
            "${ssm:/placeos/staging/admin-password}"
        );
    }

    #[test]
    fn stack_names_follow_cloudformation_rules() {
        assert!(is_stack_name("staging-1-1-vpc"));
        assert!(!is_stack_name("1-vpc"));
        assert!(!is_stack_name("a_b"));
        assert!(!is_stack_name(&"a".repeat(129)));
    }

    #[test]
    fn stack_names_are_their_own_reference() {
        let e = parse("${vpc.stack_name}-VpcId").unwrap();
        assert_eq!(
            e.segments[0],
            Segment::Ref(Reference::StackName {
                stack: "vpc".into()
            })
        );
        assert_eq!(e.to_string(), "${vpc.stack_name}-VpcId");
        let e = parse("${ssm:/x/${vpc.stack_name}}").unwrap_err();
        assert_eq!(
            e.message,
            "an SSM parameter path cannot contain `${vpc.stack_name}`"
        );
    }

    #[test]
    fn escapes_and_lone_dollars_are_text() {
        let e = parse("cost $5 and $${AWS::Region}").unwrap();
        assert_eq!(e.as_literal().unwrap(), "cost $5 and ${AWS::Region}");
        assert_eq!(e.to_string(), "cost $5 and $${AWS::Region}");
    }

    #[test]
    fn errors_say_where_and_what() {
        let e = parse("a ${vpc.VpcId").unwrap_err();
        assert_eq!(e.message, "`${` is never closed");
        assert_eq!(e.offset, 2);
        let e = parse("${env.nmae}").unwrap_err();
        assert_eq!(
            e.message,
            "`env.nmae` is not an environment fact; did you mean `env.name`?"
        );
        let e = parse("${nothing}").unwrap_err();
        assert_eq!(
            e.message,
            "`${nothing}` is not an expression formwork knows"
        );
        let e = parse("${external:shared-network.VpcId}").unwrap();
        assert_eq!(
            e.segments,
            vec![Segment::Ref(Reference::External {
                stack_name: Expr::literal("shared-network"),
                output: "VpcId".into()
            })]
        );
        assert_eq!(e.to_string(), "${external:shared-network.VpcId}");
        let e = parse("${external:${var.Main}-5-3a.Address}").unwrap();
        assert_eq!(e.to_string(), "${external:${var.Main}-5-3a.Address}");
        assert_eq!(e.references().len(), 2);
        let resolved = e.substitute(&mut |r| match r {
            Reference::Var(v) if v == "Main" => Some("tts-main".into()),
            _ => None,
        });
        assert_eq!(resolved.to_string(), "${external:tts-main-5-3a.Address}");
        let e = parse("${external:net-${env.name}.VpcId}").unwrap();
        assert_eq!(e.to_string(), "${external:net-${env.name}.VpcId}");
        for bad in [
            "${external:net}",
            "${external:9net.VpcId}",
            "${external:net.Vpc-Id}",
            "${external:${var.Main}}",
            "${external:${vpc.VpcId}-x.Out}",
            "${external:${var.Main}.}",
            "${external:.Out}",
            "${external:net",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("${ssm:/a/${vpc.VpcId}}").unwrap_err();
        assert!(e.message.contains("cannot contain"));
    }
}
