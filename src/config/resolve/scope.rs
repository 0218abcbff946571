//! One environment's facts (`${env.…}`), variables (`${var.…}`) and stack names
//! (`${stack.stack_name}`), for filling in expressions; and static values (tags, stack names,
//! template URLs), each filled in once per environment however many stacks share it. A
//! variable whose value holds plan-time references (an output, an SSM parameter, …) is spliced
//! into parameters as that expression; in a static value it is an error at the place of use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::references::checked_static;
use super::stack_name::StackNames;
use super::values::At;
use super::variables::VarValue;
use crate::config::expr::{EnvFact, Expr, Reference};
use crate::config::load::{Environment, Pipeline};
use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::Spanned;

/// Facts and variables of one environment, for filling in expressions.
pub(super) struct Scope<'a> {
    env: &'a Environment,
    vars: HashMap<String, VarValue>,
    /// The CloudFormation stack name of each stack the environment deploys and where it was
    /// decided, by key.
    stack_names: StackNames,
    /// Static values already filled in, by where they were written: tags and names shared by
    /// every stack are worked out once per environment.
    filled: RefCell<HashMap<Loc, Option<String>>>,
    /// The references to other environments' outputs met so far.
    remote: RefCell<Vec<crate::desired::remote::RemoteRef>>,
}

impl<'a> Scope<'a> {
    /// The facts of `env`, no variables yet.
    pub(super) fn new(env: &'a Environment) -> Scope<'a> {
        Scope {
            env,
            vars: HashMap::new(),
            stack_names: StackNames::new(),
            filled: RefCell::default(),
            remote: RefCell::default(),
        }
    }

    /// Notes a reference to an output of another environment's stack, checked once the other
    /// environments are resolved.
    pub(super) fn note_remote(&self, r: crate::desired::remote::RemoteRef) {
        self.remote.borrow_mut().push(r);
    }

    /// The references to other environments' outputs met.
    pub(super) fn take_remote(&self) -> Vec<crate::desired::remote::RemoteRef> {
        std::mem::take(&mut self.remote.borrow_mut())
    }

    /// The value of variable `name`, when it resolved.
    pub(super) fn var(&self, name: &str) -> Option<&VarValue> {
        self.vars.get(name)
    }

    pub(super) fn set_var(&mut self, name: String, value: VarValue) {
        self.vars.insert(name, value);
    }

    /// `e` with each `${var.…}` standing in it replaced by the variable's value, references and
    /// all (`${var.DbEndpoint}` by `${db.Endpoint}`); variables inside an SSM path, a secret's
    /// name or an external stack's name are left to [`Scope::fill`], which takes only text.
    pub(super) fn splice_vars(&self, e: &Expr) -> Expr {
        e.splice(&mut |r| match r {
            Reference::Var(v) => self.vars.get(v).map(|x| x.expr.clone()),
            _ => None,
        })
    }

    /// Reports each `${var.…}` of `e` (written at `at`, a value of kind `what`) whose variable
    /// has a value that is not static text in this environment; `false` when there was one.
    pub(super) fn check_static_vars(
        &self,
        e: &Expr,
        at: &At<'_>,
        what: &str,
        d: &mut Diagnostics,
    ) -> bool {
        let mut ok = true;
        for r in e.references() {
            let Reference::Var(name) = r else {
                continue;
            };
            let Some(v) = self.vars.get(name) else {
                continue;
            };
            if v.expr.as_literal().is_some() {
                continue;
            }
            ok = false;
            d.push(
                Diagnostic::error(format!(
                    "{what} cannot use variable `{name}` in environment `{}`: its value `{}` (set at {}) is read when planning, not known from the config",
                    self.env.name, v.expr, v.loc
                ))
                .at(at.of(r))
                .help(format!(
                    "use `${{var.{name}}}` in stack parameters only, or write the value here without stack outputs, stack names, SSM parameters or secrets (`${{env.…}}` and variables of such values are fine)"
                )),
            );
        }
        ok
    }

    pub(super) fn set_stack_names(&mut self, names: StackNames) {
        self.stack_names = names;
    }

    /// The stack name of stack `key` and where it was decided; `None` when it has none.
    pub(super) fn stack_name(&self, key: &str) -> Option<&(String, Loc)> {
        self.stack_names.get(key)
    }

    /// `e` with the environment's facts, and the variables and stack names known so far,
    /// filled in.
    pub(super) fn fill(&self, e: &Expr) -> Expr {
        e.substitute(&mut |r| match r {
            Reference::Env(EnvFact::Name) => Some(self.env.name.clone()),
            Reference::Env(EnvFact::Region) => Some(self.env.def.region.value.clone()),
            Reference::Env(EnvFact::Account) => Some(self.env.def.account.value.clone()),
            Reference::Var(v) => self.vars.get(v).and_then(|x| x.expr.as_literal()),
            Reference::StackName { stack } => self.stack_names.get(stack).map(|(n, _)| n.clone()),
            _ => None,
        })
    }
}

/// Fills in a static value (tag, stack name, URL); `None` after reporting a problem. Each
/// place is filled in once.
pub(super) fn static_value(
    p: &Pipeline,
    file: &Arc<str>,
    v: &Spanned<String>,
    scope: &Scope<'_>,
    what: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let loc = Loc::new(file, v.span);
    if let Some(done) = scope.filled.borrow().get(&loc) {
        return done.clone();
    }
    let value = fill_static(p, file, v, scope, what, d);
    scope.filled.borrow_mut().insert(loc, value.clone());
    value
}

/// [`static_value`] without remembering it: for a text written once and filled in for many
/// stacks (a stack-name pattern).
pub(super) fn fill_static(
    p: &Pipeline,
    file: &Arc<str>,
    v: &Spanned<String>,
    scope: &Scope<'_>,
    what: &str,
    d: &mut Diagnostics,
) -> Option<String> {
    let e = checked_static(p, file, d, v, what)?;
    if !scope.check_static_vars(&e, &At::string(file, v), what, d) {
        return None;
    }
    scope.fill(&e).as_literal()
}
