//! An environment's variables: the values it sets (for variables its pipeline declares), and
//! the defaults of those it leaves out. A value may hold what a parameter may — other stacks'
//! outputs and names, SSM parameters, secrets, outputs of stacks elsewhere — and other
//! variables, without cycles. Each is checked where it was written and kept as an expression
//! with `${env.…}` and the variables it uses filled in; a parameter that uses it takes that
//! expression ([`Scope::splice_vars`]), and a static value only text.

use std::collections::BTreeSet;
use std::sync::Arc;

use indexmap::IndexMap;

use super::references::{Allowed, check_refs};
use super::scope::Scope;
use super::values::{At, parse_value};
use crate::config::expr::{Expr, Reference};
use crate::config::load::{Environment, Pipeline};
use crate::config::model::ParamValue;
use crate::diag::{Diagnostic, Diagnostics, Loc, Severity};
use crate::suggest;
use crate::yaml::Spanned;

/// A variable's value in one environment.
#[derive(Clone, Debug)]
pub(super) struct VarValue {
    /// The value with `${env.…}` and the variables it uses filled in; references read when
    /// planning (outputs, SSM parameters, …) and stack names are kept.
    pub(super) expr: Expr,
    /// Where the value was written.
    pub(super) loc: Loc,
    /// Where each reference to a stack (`${stack.Output}`, `${stack.stack_name}`,
    /// `${env:…}`) in it was written: in its own value or in that of a variable it uses.
    pub(super) located: Vec<(Reference, Loc)>,
}

impl VarValue {
    /// Where reference `r` of the value was written.
    pub(super) fn loc_of(&self, r: &Reference) -> Option<&Loc> {
        self.located.iter().find(|(x, _)| x == r).map(|(_, l)| l)
    }
}

/// A variable's value as written, parsed.
struct Written<'a> {
    file: &'a Arc<str>,
    value: &'a Spanned<ParamValue>,
    expr: Expr,
}

impl Written<'_> {
    fn at(&self) -> At<'_> {
        At::value(self.file, self.value)
    }

    /// The variables it uses, each once, in the order written.
    fn uses(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self.expr.references() {
            if let Reference::Var(v) = r
                && !out.contains(&v.as_str())
            {
                out.push(v);
            }
        }
        out
    }
}

/// Fills `scope` with the variables of `env`: those it sets, and the defaults of the others.
pub(super) fn resolve_variables(
    p: &Pipeline,
    env: &Environment,
    scope: &mut Scope<'_>,
    d: &mut Diagnostics,
) {
    let mut written = IndexMap::new();
    set_variables(p, env, &mut written, d);
    default_variables(p, env, &mut written, d);
    // In the pipeline's order, so that a cycle is told from the variable declared first.
    written.sort_by_cached_key(|name, _| p.def.vars.get_index_of(name.as_str()));
    let (order, in_cycle) = order(&written, d);
    for name in order {
        if in_cycle.contains(&name) {
            continue;
        }
        if let Some(v) = var_value(p, &written[&name], scope, d) {
            scope.set_var(name, v);
        }
    }
}

/// Checks the variable defaults of a pipeline on their own: their references, and cycles
/// between them.
pub(super) fn check_var_defaults(p: &Pipeline, d: &mut Diagnostics) {
    let mut written = IndexMap::new();
    for (name, decl) in &p.def.vars {
        if let Some(default) = &decl.default {
            add_written(&mut written, name, &p.file, default, d);
        }
    }
    for w in written.values() {
        for diag in check_refs(p, None, &w.expr, &w.at(), Allowed::Variable, "a variable") {
            d.push(diag);
        }
    }
    order(&written, d);
}

/// Parses a value written for variable `name` into `written`; reports a malformed one.
fn add_written<'a>(
    written: &mut IndexMap<String, Written<'a>>,
    name: &Spanned<String>,
    file: &'a Arc<str>,
    value: &'a Spanned<ParamValue>,
    d: &mut Diagnostics,
) {
    match parse_value(file, value) {
        Ok(expr) => {
            written.insert(name.value.clone(), Written { file, value, expr });
        }
        Err(e) => d.push(e),
    }
}

/// The variables the environment sets: each must be declared by the pipeline.
fn set_variables<'a>(
    p: &Pipeline,
    env: &'a Environment,
    written: &mut IndexMap<String, Written<'a>>,
    d: &mut Diagnostics,
) {
    let f = &env.file;
    for (name, value) in &env.def.vars {
        if !p.def.vars.contains_key(name.as_str()) {
            let near = suggest::nearest(name, p.def.vars.keys().map(|k| k.value.as_str()));
            d.push(
                Diagnostic::error(format!(
                    "pipeline `{}` declares no variable `{}`",
                    p.name, name.value
                ))
                .at(Loc::new(f, name.span))
                .label_opt(near.map(|n| format!("did you mean `{n}`?")))
                .help(format!("declare it under `vars:` in {}", p.file)),
            );
            continue;
        }
        add_written(written, name, f, value, d);
    }
}

/// The variables the environment leaves out: each takes its default, and one without a default
/// is an error.
fn default_variables<'a>(
    p: &'a Pipeline,
    env: &Environment,
    written: &mut IndexMap<String, Written<'a>>,
    d: &mut Diagnostics,
) {
    let f = &env.file;
    for (name, decl) in &p.def.vars {
        if env.def.vars.contains_key(name.as_str()) {
            continue;
        }
        match &decl.default {
            Some(default) => add_written(written, name, &p.file, default, d),
            None => d.push(
                Diagnostic::error(format!(
                    "environment `{}` does not set variable `{}`, which has no default",
                    env.name, name.value
                ))
                .at(Loc::new(f, env.def.pipeline.span))
                .help(format!("add `vars: {{{}: …}}` to {f}", name.value)),
            ),
        }
    }
}

/// The variables in an order where each comes after those it uses, and those that close a
/// cycle (reported, with the cycle, where the variable closing it is used).
fn order(
    written: &IndexMap<String, Written<'_>>,
    d: &mut Diagnostics,
) -> (Vec<String>, BTreeSet<String>) {
    let mut walk = Walk {
        written,
        visiting: Vec::new(),
        done: BTreeSet::new(),
        order: Vec::new(),
        in_cycle: BTreeSet::new(),
    };
    for name in written.keys() {
        walk.visit(name, d);
    }
    (walk.order, walk.in_cycle)
}

/// A depth-first walk over the variables that values use.
struct Walk<'w, 'a> {
    written: &'w IndexMap<String, Written<'a>>,
    /// The chain of variables being visited, each using the next.
    visiting: Vec<String>,
    done: BTreeSet<String>,
    order: Vec<String>,
    in_cycle: BTreeSet<String>,
}

impl Walk<'_, '_> {
    fn visit(&mut self, name: &str, d: &mut Diagnostics) {
        if self.done.contains(name) {
            return;
        }
        let Some(w) = self.written.get(name) else {
            return;
        };
        self.visiting.push(name.to_string());
        for used in w.uses() {
            if let Some(i) = self.visiting.iter().position(|v| v == used) {
                self.in_cycle.insert(name.to_string());
                d.push(cycle_error(&self.visiting[i..], used, w));
            } else {
                self.visit(used, d);
            }
        }
        self.visiting.pop();
        self.done.insert(name.to_string());
        self.order.push(name.to_string());
    }
}

/// The error of a cycle: `chain` (each variable using the next), closed by the last using
/// `closing`, written in `w`.
fn cycle_error(chain: &[String], closing: &str, w: &Written<'_>) -> Diagnostic {
    let last = chain.last().map(String::as_str).unwrap_or(closing);
    let path: Vec<String> = chain
        .iter()
        .map(String::as_str)
        .chain([closing])
        .map(|v| format!("`{v}`"))
        .collect();
    let message = if chain.len() == 1 {
        format!("variable `{last}` uses its own value")
    } else {
        format!(
            "variables use each other's values in a cycle: {}",
            path.join(" → ")
        )
    };
    Diagnostic::error(message)
        .at(w.at().of(&Reference::Var(closing.to_string())))
        .help(format!(
            "a variable's value cannot depend on itself; write `{last}` without `${{var.{closing}}}`, or give one of the others a value of its own"
        ))
}

/// The value of one variable, written as `w`, once the variables it uses are in `scope`;
/// `None` after reporting what is wrong with it, or when a variable it uses has no value.
fn var_value(
    p: &Pipeline,
    w: &Written<'_>,
    scope: &Scope<'_>,
    d: &mut Diagnostics,
) -> Option<VarValue> {
    let at = w.at();
    let mut ok = true;
    for diag in check_refs(p, None, &w.expr, &at, Allowed::Variable, "a variable") {
        ok &= diag.severity != Severity::Error;
        d.push(diag);
    }
    if !ok || w.uses().iter().any(|v| scope.var(v).is_none()) {
        return None;
    }
    let spliced = scope.splice_vars(&w.expr);
    if !scope.check_static_vars(&spliced, &at, NAMES_INSIDE, d) {
        return None;
    }
    let mut located = Vec::new();
    for r in w.expr.references() {
        match r {
            Reference::Var(v) => {
                if let Some(x) = scope.var(v) {
                    located.extend(x.located.iter().cloned());
                }
            }
            Reference::Output { .. }
            | Reference::StackName { .. }
            | Reference::EnvOutput { .. } => {
                located.push((r.clone(), at.of(r)));
            }
            _ => {}
        }
    }
    Some(VarValue {
        expr: scope.fill(&spliced),
        loc: at.whole(),
        located,
    })
}

/// What a variable inside another reference is part of, for messages.
pub(super) const NAMES_INSIDE: &str =
    "a name inside `${ssm:…}`, `${secretsmanager:…}` or `${external:…}`";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::expr::parse;

    fn written<'a>(
        file: &'a Arc<str>,
        values: &'a [(&str, Spanned<ParamValue>)],
    ) -> IndexMap<String, Written<'a>> {
        values
            .iter()
            .map(|(n, v)| {
                let ParamValue::Scalar(s) = &v.value else {
                    unreachable!()
                };
                let w = Written {
                    file,
                    value: v,
                    expr: parse(s).expect("parses"),
                };
                (n.to_string(), w)
            })
            .collect()
    }

    fn value(s: &str) -> Spanned<ParamValue> {
        Spanned::new(ParamValue::Scalar(s.into()), crate::diag::Span::default())
    }

    #[test]
    fn variables_come_after_those_they_use() {
        let file: Arc<str> = "p.yml".into();
        let values = [
            ("Url", value("https://${var.Host}/${var.Path}")),
            ("Host", value("${db.Endpoint}")),
            ("Path", value("x")),
        ];
        let w = written(&file, &values);
        let mut d = Diagnostics::new();
        let (order, in_cycle) = order(&w, &mut d);
        assert_eq!(order, ["Host", "Path", "Url"]);
        assert!(in_cycle.is_empty());
        assert!(!d.has_errors());
    }

    #[test]
    fn a_cycle_is_reported_once_with_its_chain() {
        let file: Arc<str> = "p.yml".into();
        let values = [
            ("A", value("${var.B}-a")),
            ("B", value("${var.C}")),
            ("C", value("x-${var.A}")),
            ("D", value("${var.A}")),
            ("Self", value("${var.Self}")),
        ];
        let w = written(&file, &values);
        let mut d = Diagnostics::new();
        let (_, in_cycle) = order(&w, &mut d);
        assert_eq!(
            in_cycle,
            BTreeSet::from(["C".to_string(), "Self".to_string()])
        );
        let messages: Vec<String> = d.iter().map(|x| x.message.clone()).collect();
        assert_eq!(
            messages,
            [
                "variables use each other's values in a cycle: `A` → `B` → `C` → `A`",
                "variable `Self` uses its own value",
            ]
        );
    }
}
