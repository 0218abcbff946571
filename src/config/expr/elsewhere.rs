//! References to stacks outside the environment: `${external:stack-name.Output}` (a stack
//! deployed some other way, in the same account and region) and
//! `${env:ENVIRONMENT.stack.Output}` (a stack of another environment of the repository).

use super::{Expr, ExprError, Reference, Segment, is_stack_char, parse_until, unclosed};

/// Parses `${external:stack-name.Output}` from `start` (the `${`); `from` is where the stack name
/// begins. The name may hold `${var.…}` and `${env.…}`; the output follows the last `.` of the
/// text after them.
pub(super) fn parse_external(
    chars: &[char],
    start: usize,
    from: usize,
) -> Result<(Reference, usize), ExprError> {
    let (inner, end) = parse_until(chars, from, true)?;
    if end >= chars.len() {
        return Err(unclosed(start));
    }
    let written: String = chars[start..=end].iter().collect();
    let bad = |message: String| {
        ExprError {
        message,
        offset: start,
        len: end + 1 - start,
        help: Some(
            "write `${external:stack-name.Output}`: a CloudFormation stack name (letters, digits, hyphens; `${var.NAME}` and `${env.…}` may be part of it) and an output name".into(),
        ),
    }
    };
    let mut segments = inner.segments;
    let output = match segments.last_mut() {
        Some(Segment::Text(t)) if t.contains('.') => {
            let dot = t.rfind('.').unwrap_or_default();
            let output = t[dot + 1..].to_string();
            t.truncate(dot);
            if t.is_empty() {
                segments.pop();
            }
            output
        }
        _ => return Err(bad(format!("`{written}` names no output"))),
    };
    if output.is_empty() || !output.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(format!("`{output}` is not an output name")));
    }
    let stack_name = Expr { segments };
    for (i, seg) in stack_name.segments.iter().enumerate() {
        match seg {
            Segment::Text(t) => {
                let starts_ok = i > 0 || t.starts_with(|c: char| c.is_ascii_alphabetic());
                if !starts_ok || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad(format!(
                        "`{stack_name}` is not a CloudFormation stack name"
                    )));
                }
            }
            Segment::Ref(Reference::Var(_) | Reference::Env(_)) => {}
            Segment::Ref(r) => {
                return Err(bad(format!("an external stack name cannot contain `{r}`")));
            }
        }
    }
    match stack_name.as_literal() {
        None => {}
        Some(n) if !n.is_empty() && n.len() <= 128 => {}
        Some(_) => return Err(bad(format!("`{written}` names no stack"))),
    }
    Ok((Reference::External { stack_name, output }, end + 1))
}

/// How a reference to another environment's output is written, for help texts.
pub const ENV_OUTPUTS: &str = "write `${env:ENVIRONMENT.stack.Output}`: the name of another environment (a directory under environments/), a stack key of its pipeline and an output name, as in `${env:shared-network.vpc.VpcId}`";

/// Whether `name` can be named in `${env:NAME.…}`: letters, digits, `-` and `_`.
pub fn is_environment_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses `${env:ENVIRONMENT.stack.Output}` from `start` (the `${`); `from` is where the
/// environment's name begins. All three parts are written out: the environment must be known
/// when the config is checked.
pub(super) fn parse_env_output(
    chars: &[char],
    start: usize,
    from: usize,
) -> Result<(Reference, usize), ExprError> {
    let Some(close) = chars[from..].iter().position(|&c| c == '}') else {
        return Err(unclosed(start));
    };
    let end = from + close;
    let inner: String = chars[from..end].iter().collect();
    let bad = |message: String| ExprError {
        message,
        offset: start,
        len: end + 1 - start,
        help: Some(ENV_OUTPUTS.into()),
    };
    if inner.contains("${") {
        return Err(bad(format!(
            "`${{env:{inner}}}` cannot hold expressions: the environment, stack and output are written out"
        )));
    }
    let parts: Vec<&str> = inner.split('.').collect();
    let [environment, stack, output] = parts.as_slice() else {
        return Err(bad(format!(
            "`${{env:{inner}}}` does not name an environment, a stack and an output"
        )));
    };
    if !is_environment_name(environment) {
        return Err(bad(format!("`{environment}` is not an environment name")));
    }
    if stack.is_empty() || !stack.chars().all(is_stack_char) {
        return Err(bad(format!("`{stack}` is not a stack key")));
    }
    if output.is_empty() || !output.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(format!("`{output}` is not an output name")));
    }
    Ok((
        Reference::EnvOutput {
            environment: environment.to_string(),
            stack: stack.to_string(),
            output: output.to_string(),
        },
        end + 1,
    ))
}

/// Whether `name` can be a CloudFormation stack name: a letter, then letters, digits and
/// hyphens, at most 128 characters.
pub fn is_stack_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn outputs_of_other_environments_name_all_three_parts() {
        let e = parse("vpc=${env:shared-network.vpc.VpcId}").unwrap();
        assert_eq!(
            e.segments[1],
            Segment::Ref(Reference::EnvOutput {
                environment: "shared-network".into(),
                stack: "vpc".into(),
                output: "VpcId".into()
            })
        );
        assert_eq!(e.to_string(), "vpc=${env:shared-network.vpc.VpcId}");
        // `${env.name}` is still the environment's own name.
        assert_eq!(
            parse("${env.name}").unwrap().segments[0],
            Segment::Ref(Reference::Env(EnvFact::Name))
        );
        for (bad, says) in [
            (
                "${env:shared.vpc}",
                "does not name an environment, a stack and an output",
            ),
            (
                "${env:a.b.c.d}",
                "does not name an environment, a stack and an output",
            ),
            ("${env:sh ared.vpc.VpcId}", "is not an environment name"),
            ("${env:shared.v_pc.VpcId}", "is not a stack key"),
            ("${env:shared.vpc.Vpc-Id}", "is not an output name"),
            ("${env:${var.E}.vpc.VpcId}", "cannot hold expressions"),
            ("${env:shared.vpc.VpcId", "never closed"),
            ("${ssm:/a/${env:shared.vpc.VpcId}}", "cannot contain"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }
}
