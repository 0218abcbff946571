//! `${secretsmanager:NAME}` and `${secretsmanager:NAME:KEY}`: a secret of AWS Secrets Manager,
//! or one key of it read as a JSON object.

use super::{Expr, ExprError, Reference, Segment, parse_until, unclosed};

/// What starts a Secrets Manager reference, after `${`.
pub(super) const SECRETS_PREFIX: &str = "secretsmanager:";

/// How secret names are written, for help texts (Secrets Manager API reference, `Name`).
pub const SECRET_NAMES: &str = "secret names use letters, digits and `/_+=.@-`, at most 512 characters; a JSON key of the secret follows a `:` (`${secretsmanager:prod/db:password}`)";

/// Whether `name` can be a Secrets Manager secret's name.
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

/// Parses `${secretsmanager:NAME[:KEY]}` from the name at `from` (the reference starts at
/// `start`).
pub(super) fn parse_secret(
    chars: &[char],
    start: usize,
    from: usize,
) -> Result<(Reference, usize), ExprError> {
    let (body, end) = parse_until(chars, from, true)?;
    if end >= chars.len() {
        return Err(unclosed(start));
    }
    let err = |message: String| ExprError {
        message,
        offset: start,
        len: end + 1 - start,
        help: Some(SECRET_NAMES.into()),
    };
    // The name, then `:KEY` in the text after it.
    let mut name = Vec::new();
    let mut key = None;
    for seg in body.segments {
        match seg {
            Segment::Text(t) if key.is_none() && t.contains(':') => {
                let (before, after) = t.split_once(':').unwrap_or((&t, ""));
                if !before.is_empty() {
                    name.push(Segment::Text(before.to_string()));
                }
                key = Some(after.to_string());
            }
            Segment::Text(t) if key.is_some() => {
                if let Some(k) = key.as_mut() {
                    k.push_str(&t);
                }
            }
            Segment::Ref(r) if key.is_some() => {
                return Err(err(format!("the key of a secret cannot contain `{r}`")));
            }
            Segment::Ref(
                r @ (Reference::Output { .. }
                | Reference::StackName { .. }
                | Reference::Ssm(_)
                | Reference::Secret { .. }
                | Reference::External { .. }
                | Reference::EnvOutput { .. }),
            ) => return Err(err(format!("a secret's name cannot contain `{r}`"))),
            seg => name.push(seg),
        }
    }
    let name = Expr { segments: name };
    if name.segments.is_empty() {
        return Err(err("`${secretsmanager:}` names no secret".into()));
    }
    if let Some(n) = name.as_literal()
        && !is_secret_name(&n)
    {
        return Err(err(format!("`{n}` is not a Secrets Manager secret name")));
    }
    if let Some(k) = &key
        && (k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)))
    {
        return Err(ExprError {
            message: format!("`{k}` is not a key of a secret"),
            offset: start,
            len: end + 1 - start,
            help: Some("a key uses letters, digits, `_`, `-` and `.`".into()),
        });
    }
    Ok((Reference::Secret { name, key }, end + 1))
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn secrets_manager_references_with_and_without_a_key() {
        let e = parse("${secretsmanager:shop/${env.name}/db:password}").unwrap();
        let Segment::Ref(Reference::Secret { name, key }) = &e.segments[0] else {
            panic!("{e:?}");
        };
        assert_eq!(name.to_string(), "shop/${env.name}/db");
        assert_eq!(key.as_deref(), Some("password"));
        assert_eq!(
            e.to_string(),
            "${secretsmanager:shop/${env.name}/db:password}"
        );
        let e = parse("token=${secretsmanager:api-token}").unwrap();
        assert_eq!(
            e.segments[1],
            Segment::Ref(Reference::Secret {
                name: Expr {
                    segments: vec![Segment::Text("api-token".into())]
                },
                key: None
            })
        );
        for (bad, says) in [
            ("${secretsmanager:}", "names no secret"),
            (
                "${secretsmanager:a b}",
                "is not a Secrets Manager secret name",
            ),
            ("${secretsmanager:db:pass word}", "is not a key of a secret"),
            ("${secretsmanager:db:}", "is not a key of a secret"),
            ("${secretsmanager:${vpc.Id}}", "cannot contain"),
            (
                "${secretsmanager:db:${var.k}}",
                "the key of a secret cannot contain",
            ),
            ("${secretsmanager:db", "never closed"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }
}
