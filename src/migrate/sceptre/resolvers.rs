//! Sceptre's resolvers in a parameter value mapped to formwork expressions:
//! `!stack_output dev/net.yaml::VpcId` → `${net.VpcId}` (a stack of the same environment; the
//! dependency comes with it), `!ssm /path` → `${ssm:/path}`, `!sub` and `!join` → one string
//! with the parts filled in, `!stack_attr` → the plain value it names, `!no_value` → no value.
//! A list is a list (passed comma-joined, as Sceptre does). Literal text keeps a `${` as `$${`.
//! Everything else (`!stack_output_external`, `!file_contents`, `!environment_variable`,
//! `!split`, `!select`, custom resolvers, stacks of other environments) is reported where it is
//! written, and the parameter is left out.

use std::collections::{BTreeMap, BTreeSet};

use super::read::{Config, Entry};
use super::report::Report;
use crate::yaml::{Kind, Node};

/// What a stack's value may refer to.
pub struct Ctx<'a> {
    /// The top-level stack group (environment) the stack belongs to.
    pub group: &'a str,
    /// Every stack of the project: path under `config/` (no `.yaml`) → (group, stack key).
    pub stacks: &'a BTreeMap<String, (String, String)>,
    /// The stack's merged config, for `!stack_attr`.
    pub config: &'a Config,
}

/// A parameter value in formwork's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Sceptre passes nothing (`!no_value`, a null).
    Omit,
    Scalar(String),
    List(Vec<String>),
}

/// A converted value and the stack keys it takes outputs from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    pub value: Value,
    pub refs: BTreeSet<String>,
}

/// `entry` (a parameter's value) converted; `None` when it cannot be (reported).
pub fn convert(entry: &Entry, ctx: &Ctx<'_>, report: &mut Report) -> Option<Converted> {
    let mut c = Conv {
        ctx,
        file: &entry.file,
        report,
        refs: BTreeSet::new(),
    };
    let n = &entry.node;
    let value = if n.tag.as_deref() == Some("!no_value") || (n.tag.is_none() && n.is_null()) {
        Value::Omit
    } else if let (None, Kind::Seq(items)) = (&n.tag, &n.kind) {
        let mut out = Vec::new();
        for i in items {
            out.push(c.string(i)?);
        }
        Value::List(out)
    } else {
        Value::Scalar(c.string(n)?)
    };
    Some(Converted {
        value,
        refs: c.refs,
    })
}

/// Text written as is in a formwork expression string: `${` kept literal, except the
/// `${var.NAME}` that a Jinja `{{ var.NAME }}` without a value was read as.
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        if !rest[i..].starts_with("${var.") {
            out.push('$');
        }
        out.push_str("${");
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

struct Conv<'a, 'r> {
    ctx: &'a Ctx<'a>,
    file: &'a str,
    report: &'r mut Report,
    refs: BTreeSet<String>,
}

fn pos(n: &Node) -> (u32, u32) {
    (n.span.start.line, n.span.start.col)
}

impl Conv<'_, '_> {
    fn unmapped(
        &mut self,
        n: &Node,
        kind: &'static str,
        message: String,
        help: &str,
    ) -> Option<String> {
        self.report.add(self.file, pos(n), kind, message, help);
        None
    }

    fn arg<'n>(&mut self, n: &'n Node, tag: &str) -> Option<&'n str> {
        match n.as_str() {
            Some(s) => Some(s),
            None => {
                self.unmapped(
                    n,
                    "resolver",
                    format!("`{tag}` with {} as its argument", n.kind_name()),
                    "give it a string argument, or write the value by hand",
                );
                None
            }
        }
    }

    /// One value as a formwork expression string.
    fn string(&mut self, n: &Node) -> Option<String> {
        let tag = n.tag.as_deref().filter(|t| !t.starts_with("!!"));
        match tag {
            None => match &n.kind {
                Kind::Scalar(s) => Some(literal(&s.text)),
                _ => self.unmapped(
                    n,
                    "value",
                    format!("{} where formwork takes a string", n.kind_name()),
                    "write the value as a string (a list only at the top of a parameter)",
                ),
            },
            Some("!stack_output") => {
                let arg = self.arg(n, "!stack_output")?;
                self.stack_output(n, arg)
            }
            Some("!ssm") => {
                let name = match &n.kind {
                    Kind::Map(_) if n.entries().len() == 1 => n.get("name").and_then(Node::as_str),
                    Kind::Scalar(s) => Some(s.text.as_str()),
                    _ => None,
                };
                match name {
                    Some(p) if !p.trim().is_empty() && !p.contains('}') => {
                        Some(format!("${{ssm:{}}}", p.trim()))
                    }
                    _ => self.unmapped(
                        n,
                        "resolver",
                        "`!ssm` with a profile, region or unusual name".into(),
                        "formwork reads SSM parameters with the environment's session: write \
                         ${ssm:/path} for a parameter of the environment's account and region, or \
                         copy the parameter there",
                    ),
                }
            }
            Some("!sub") => self.sub(n),
            Some("!join") => {
                let items = match &n.kind {
                    Kind::Seq(v) if v.len() == 2 => v,
                    _ => {
                        return self.unmapped(
                            n,
                            "resolver",
                            "`!join` whose argument is not [delimiter, [items]]".into(),
                            "write the joined value by hand",
                        );
                    }
                };
                let delim = items[0].as_str().map(literal);
                let (Some(delim), Kind::Seq(parts)) = (delim, &items[1].kind) else {
                    return self.unmapped(
                        n,
                        "resolver",
                        "`!join` whose argument is not [delimiter, [items]]".into(),
                        "write the joined value by hand",
                    );
                };
                let mut out = Vec::new();
                for p in parts {
                    out.push(self.string(p)?);
                }
                Some(out.join(&delim))
            }
            Some("!stack_attr") => {
                let arg = self.arg(n, "!stack_attr")?;
                match stack_attr(self.ctx.config, arg) {
                    Some(v) => Some(literal(&v)),
                    None => self.unmapped(
                        n,
                        "resolver",
                        format!("`!stack_attr {arg}` names no plain value of the stack's config"),
                        "write the value by hand",
                    ),
                }
            }
            Some("!stack_output_external") => self.unmapped(
                n,
                "resolver",
                format!(
                    "`!stack_output_external {}` reads a stack formwork does not deploy",
                    n.as_str().unwrap_or("…")
                ),
                "have that stack publish the value in SSM and read it with ${ssm:/path}, or \
                 export it and import it in the template (Fn::ImportValue, with \
                 external_exports in the environment), or write the value by hand",
            ),
            Some("!file_contents") => self.unmapped(
                n,
                "resolver",
                "`!file_contents` passes a file's text as the value".into(),
                "write the text as the value, or keep it in SSM and read it with ${ssm:/path}",
            ),
            Some("!environment_variable") => self.unmapped(
                n,
                "resolver",
                "`!environment_variable` reads the environment Sceptre runs in".into(),
                "declare a pipeline variable and set it in each environment.yml (${var.NAME}), or \
                 keep the value in SSM (${ssm:/path})",
            ),
            Some(t) => self.unmapped(
                n,
                "resolver",
                format!("resolver `{t}` has no formwork equivalent"),
                "work out the value it gives and write it, per environment if it differs",
            ),
        }
    }

    fn stack_output(&mut self, n: &Node, arg: &str) -> Option<String> {
        let Some((path, output)) = arg.trim().split_once("::") else {
            return self.unmapped(
                n,
                "resolver",
                format!("`!stack_output {arg}` is not STACK_PATH::OUTPUT"),
                "fix the reference",
            );
        };
        let path = path
            .trim()
            .trim_start_matches("./")
            .trim_end_matches(".yaml");
        match self.ctx.stacks.get(path) {
            Some((group, key)) if group == self.ctx.group => {
                self.refs.insert(key.clone());
                Some(format!("${{{key}.{}}}", output.trim()))
            }
            Some((group, _)) => self.unmapped(
                n,
                "resolver",
                format!(
                    "`!stack_output {arg}` reads a stack of another stack group (`{group}`, \
                     another formwork environment)"
                ),
                "an environment only reads its own stacks: publish the value in SSM and read it \
                 with ${ssm:/path}, or write it by hand",
            ),
            None => self.unmapped(
                n,
                "resolver",
                format!("`!stack_output {arg}` names no stack of the project (config/{path}.yaml)"),
                "fix the path (relative to config/), or write the value by hand",
            ),
        }
    }

    /// `!sub [FORMAT, {NAME: VALUE}]`: Python's `str.format` with the values converted.
    fn sub(&mut self, n: &Node) -> Option<String> {
        let bad = |c: &mut Self| {
            c.unmapped(
                n,
                "resolver",
                "`!sub` whose argument is not [format, {name: value}]".into(),
                "write the value by hand",
            )
        };
        let Kind::Seq(items) = &n.kind else {
            return bad(self);
        };
        let [fmt, vars] = items.as_slice() else {
            return bad(self);
        };
        let (Some(fmt), Kind::Map(_)) = (fmt.as_str(), &vars.kind) else {
            return bad(self);
        };
        let mut out = String::new();
        let mut lit = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    let value = match vars.get(&name) {
                        Some(v) if !name.contains([':', '!', '[', '.']) => self.string(v)?,
                        _ => {
                            return self.unmapped(
                                n,
                                "resolver",
                                format!("`!sub` field `{{{name}}}` has no plain value"),
                                "write the value by hand",
                            );
                        }
                    };
                    if lit.ends_with('$') && value.starts_with("${") {
                        return self.unmapped(
                            n,
                            "resolver",
                            format!(
                                "`!sub` puts a `$` right before the expression of `{{{name}}}`"
                            ),
                            "write the value by hand",
                        );
                    }
                    out.push_str(&literal(&std::mem::take(&mut lit)));
                    out.push_str(&value);
                }
                c => lit.push(c),
            }
        }
        out.push_str(&literal(&lit));
        Some(out)
    }
}

/// The plain value `!stack_attr` names (`project_code`, `stack_tags.Owner`, `parameters.X`,
/// `sceptre_user_data.a.b`), when it is one.
fn stack_attr(config: &Config, arg: &str) -> Option<String> {
    let mut segs = arg.trim().split('.');
    let first = segs.next()?;
    let mut node: &Node = match first {
        "stack_tags" | "parameters" => {
            let map = if first == "stack_tags" {
                &config.stack_tags
            } else {
                &config.parameters
            };
            let e = map.get(segs.next()?)?;
            &e.node
        }
        _ => &config.fields.get(first)?.node,
    };
    for s in segs {
        node = match &node.kind {
            Kind::Map(_) => node.get(s)?,
            Kind::Seq(v) => v.get(s.parse::<usize>().ok()?)?,
            Kind::Scalar(_) => return None,
        };
    }
    match (&node.tag, &node.kind) {
        (None, Kind::Scalar(s)) => Some(s.text.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    fn run(value: &str) -> (Option<Converted>, Report) {
        let mut stacks = BTreeMap::new();
        stacks.insert(
            "dev/net".to_string(),
            ("dev".to_string(), "net".to_string()),
        );
        stacks.insert(
            "dev/db/main".to_string(),
            ("dev".to_string(), "db-main".to_string()),
        );
        stacks.insert(
            "prod/net".to_string(),
            ("prod".to_string(), "net".to_string()),
        );
        let cfg = yaml::parse("project_code: shop\nsceptre_user_data:\n  size: [s, m]\n").unwrap();
        let mut config = Config::default();
        for (k, v) in cfg.entries() {
            config.fields.insert(
                k.as_str().unwrap().to_string(),
                Entry {
                    node: v.clone(),
                    file: "config/config.yaml".into(),
                },
            );
        }
        let ctx = Ctx {
            group: "dev",
            stacks: &stacks,
            config: &config,
        };
        let node = yaml::parse(&format!("V: {value}\n")).unwrap();
        let entry = Entry {
            node: node.get("V").unwrap().clone(),
            file: "config/dev/app.yaml".into(),
        };
        let mut report = Report::default();
        let c = convert(&entry, &ctx, &mut report);
        (c, report)
    }

    fn scalar(value: &str) -> String {
        let (c, r) = run(value);
        assert!(r.unmapped.is_empty(), "{:?}", r.unmapped);
        match c.unwrap().value {
            Value::Scalar(s) => s,
            v => panic!("{v:?}"),
        }
    }

    fn unmapped(value: &str) -> (u32, u32, String) {
        let (c, r) = run(value);
        assert!(c.is_none());
        let i = &r.unmapped[0];
        assert_eq!(i.file, "config/dev/app.yaml");
        (i.line, i.column, i.message.clone())
    }

    #[test]
    fn stack_output_of_the_same_group_is_an_output_reference() {
        let (c, _) = run("!stack_output dev/net.yaml::VpcId");
        let c = c.unwrap();
        assert_eq!(c.value, Value::Scalar("${net.VpcId}".into()));
        assert_eq!(c.refs.iter().collect::<Vec<_>>(), ["net"]);
        assert_eq!(
            scalar("!stack_output dev/db/main.yaml::Endpoint"),
            "${db-main.Endpoint}"
        );
    }

    #[test]
    fn stack_output_of_another_group_or_nowhere_is_reported() {
        let (line, col, msg) = unmapped("!stack_output prod/net.yaml::VpcId");
        assert_eq!((line, col), (1, 4));
        assert!(msg.contains("another stack group"), "{msg}");
        assert!(
            unmapped("!stack_output dev/nope.yaml::X")
                .2
                .contains("names no stack")
        );
        assert!(
            unmapped("!stack_output dev/net.yaml")
                .2
                .contains("STACK_PATH::OUTPUT")
        );
    }

    #[test]
    fn ssm_sub_join_attr_and_literals() {
        assert_eq!(
            scalar("!ssm /shop/dev/password"),
            "${ssm:/shop/dev/password}"
        );
        assert_eq!(scalar("!ssm {name: /a/b}"), "${ssm:/a/b}");
        assert_eq!(
            scalar(
                "!sub ['{a}:{b}/{{x}}-${{c}}', {a: !stack_output dev/net.yaml::Host, b: '5432'}]"
            ),
            "${net.Host}:5432/{x}-$${c}"
        );
        assert_eq!(scalar("!join ['-', [a, !ssm /p]]"), "a-${ssm:/p}");
        assert_eq!(scalar("!stack_attr project_code"), "shop");
        assert_eq!(scalar("!stack_attr sceptre_user_data.size.1"), "m");
        assert_eq!(scalar("'cost ${x}'"), "cost $${x}");
        assert_eq!(run("!no_value").0.unwrap().value, Value::Omit);
        assert_eq!(run("").0.unwrap().value, Value::Omit);
        assert_eq!(
            run("[a, !ssm /b]").0.unwrap().value,
            Value::List(vec!["a".into(), "${ssm:/b}".into()])
        );
    }

    #[test]
    fn resolvers_without_an_equivalent_are_reported_at_their_position() {
        let (line, col, msg) = unmapped("!stack_output_external other-stack::Arn");
        assert_eq!((line, col), (1, 4));
        assert!(msg.contains("other-stack::Arn"), "{msg}");
        assert!(unmapped("!file_contents x.txt").2.contains("file_contents"));
        assert!(
            unmapped("!environment_variable HOME")
                .2
                .contains("environment_variable")
        );
        assert!(unmapped("!select [0, [a]]").2.contains("!select"));
        assert!(
            unmapped("!ssm {name: /a, region: eu-west-1}")
                .2
                .contains("region")
        );
        assert!(
            unmapped("!stack_attr nothing.here")
                .2
                .contains("no plain value")
        );
        assert!(unmapped("!sub ['{zz}', {a: b}]").2.contains("{zz}"));
        assert!(unmapped("{a: b}").2.contains("a mapping"));
    }
}
