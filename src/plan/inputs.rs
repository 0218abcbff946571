//! Filling in a stack's parameters for planning: outputs of other stacks (each stack described
//! once per run), SSM parameters (read in batches beforehand), and what is not known until
//! other stacks are applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::model::{Action, Input, InputState, UnitPlan};
use crate::aws::cfn::StackInfo;
use crate::aws::ssm::SsmValues;
use crate::aws::{Cfn, Session};
use crate::config::expr::{Reference, Segment};
use crate::desired::{DependencyKind, DesiredEnvironment, Unit};
use crate::secrets::{Masker, Value};

/// A stack as described (`None`: it does not exist), or why it could not be.
type Described = Result<Option<StackInfo>, String>;

/// Stacks described so far in a run, by name: every stack is described once, however many
/// dependants read its outputs.
#[derive(Default)]
pub struct StackCache {
    cells: Mutex<HashMap<String, Arc<OnceCell<Described>>>>,
}

impl StackCache {
    /// Forgets a stack, so that the next [`StackCache::get`] describes it again.
    pub fn forget(&self, name: &str) {
        self.cells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Takes what one listing of the account's stacks says of the stacks `names`: each is then
    /// read from it (absent: it does not exist) instead of described, until forgotten.
    pub fn seed(&self, listed: &[StackInfo], names: impl IntoIterator<Item = String>) {
        let by_name: HashMap<&str, &StackInfo> =
            listed.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        for name in names {
            let found = by_name.get(name.as_str()).map(|s| (*s).clone());
            cells
                .entry(name)
                .or_insert_with(|| Arc::new(OnceCell::new_with(Some(Ok(found)))));
        }
    }

    /// The stack named `name` (`None`: it does not exist), described at most once.
    pub async fn get(&self, cfn: &Cfn, name: &str) -> Result<Option<StackInfo>, String> {
        let cell = self
            .cells
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async { cfn.describe_stack(name).await.map_err(|e| e.to_string()) })
            .await
            .clone()
    }
}

/// A parameter with its value filled in as far as it can be.
#[derive(Clone, Debug)]
pub struct ResolvedParam {
    pub name: String,
    /// `None` when an input is pending (its source stack does not exist yet).
    pub value: Option<Value>,
    /// The value contains an input from a stack that changes in this plan.
    pub known_after_apply: bool,
    /// The expression as written in the config (secret literals masked).
    pub expression: String,
    /// The template declares the parameter NoEcho: CloudFormation shows its value as `****`.
    pub no_echo: bool,
}

/// Every parameter of a unit, filled in.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub params: Vec<ResolvedParam>,
    pub inputs: Vec<Input>,
    /// Problems that stop the unit from being planned.
    pub errors: Vec<String>,
}

impl Resolved {
    /// Whether some input has no value yet.
    pub fn pending(&self) -> bool {
        self.params.iter().any(|p| p.value.is_none())
    }

    /// Whether a parameter is NoEcho: CloudFormation shows its deployed value, and its value in
    /// a change set, as `****`, so they cannot be compared with the planned one. (A secret in a
    /// parameter that is not NoEcho is shown by CloudFormation, and compared like any value.)
    pub fn has_no_echo(&self) -> bool {
        self.params.iter().any(|p| p.no_echo)
    }
}

/// The SSM parameter names the units read, by the region each reads in (its own), each once
/// and sorted.
pub fn ssm_names_by_region<'a>(
    units: impl IntoIterator<Item = &'a Unit>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in units {
        out.entry(u.region.clone())
            .or_default()
            .extend(ssm_names(u));
    }
    out.into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(region, names)| (region, names.into_iter().collect()))
        .collect()
}

/// The SSM parameter names a unit reads.
pub fn ssm_names(unit: &Unit) -> Vec<String> {
    let mut out = Vec::new();
    for p in unit.parameters.values() {
        for r in p.value.references() {
            if let Reference::Ssm(path) = r
                && let Some(name) = path.as_literal()
            {
                out.push(name);
            }
        }
    }
    out
}

/// What tells secret outputs from others (see [`crate::secrets`]).
pub struct Taint<'a> {
    /// The outputs the config and templates make secret, by stack key.
    pub outputs: &'a BTreeMap<String, BTreeSet<String>>,
    /// The secrets seen so far; outputs holding one are secret, and secret outputs read are
    /// added to it, so that free text is scrubbed of them too.
    pub masker: &'a Masker,
}

impl Taint<'_> {
    /// Whether the output `output` of stack `stack` (`None`: a stack outside the environment),
    /// read as `value`, is secret; a secret one is remembered.
    fn check(&self, stack: Option<&str>, output: &str, value: &str) -> bool {
        let known = stack.is_some_and(|s| self.outputs.get(s).is_some_and(|o| o.contains(output)));
        self.check_known(known, value)
    }

    /// Whether an output read as `value` is secret, `known` to be by the config or holding a
    /// secret seen; a secret one is remembered.
    fn check_known(&self, known: bool, value: &str) -> bool {
        let secret = known || self.masker.holds_secret(value);
        if secret {
            self.masker.add(value);
        }
        secret
    }
}

/// What filling in a unit's parameters reads from: the environment, CloudFormation (stacks
/// described once each), the SSM values read beforehand, the plans of the upstream stacks of
/// this run, and what tells secret outputs apart.
pub struct Sources<'a> {
    pub env: &'a DesiredEnvironment,
    /// The clients in the unit's region (other regions' by [`Session::in_region`]).
    pub session: &'a Session,
    pub stacks: &'a StackCache,
    /// The SSM values of the unit's region.
    pub ssm: &'a SsmValues,
    /// Secrets Manager in the unit's region, read on demand (each secret once).
    pub secrets: &'a crate::aws::secrets::SecretCache,
    /// The plans of the stacks of this run that the unit takes outputs from (already planned:
    /// the unit waits for them).
    pub upstream: &'a BTreeMap<String, Arc<UnitPlan>>,
    pub taint: &'a Taint<'a>,
    /// The other environments whose stacks' outputs the unit takes (`${env:…}`).
    pub remote: &'a super::remote::RemoteSessions,
}

/// One parameter's value as it is filled in.
#[derive(Default)]
struct Filling {
    text: String,
    secret: bool,
    pending: bool,
    known_after_apply: bool,
}

/// Fills in a unit's parameters. A parameter that takes a secret output is secret.
pub async fn resolve(unit: &Unit, from: &Sources<'_>) -> Resolved {
    let mut out = Resolved::default();
    for (name, setting) in &unit.parameters {
        let mut f = Filling {
            secret: setting.no_echo,
            ..Filling::default()
        };
        for seg in &setting.value.segments {
            match seg {
                Segment::Text(t) => f.text.push_str(t),
                Segment::Ref(Reference::Output { stack, output }) => {
                    output_input(from, name, stack, output, &mut f, &mut out).await
                }
                Segment::Ref(Reference::External { stack_name, output }) => {
                    external_input(from, stack_name, output, &mut f, &mut out).await
                }
                Segment::Ref(Reference::EnvOutput {
                    environment,
                    stack,
                    output,
                }) => remote_input(from, environment, stack, output, &mut f, &mut out).await,
                Segment::Ref(Reference::Ssm(path)) => {
                    ssm_input(unit, from, name, path, &mut f, &mut out)
                }
                Segment::Ref(r @ Reference::Secret { name: secret, key }) => {
                    secret_input(from, r, secret, key.as_deref(), &mut f, &mut out).await
                }
                Segment::Ref(r) => out
                    .errors
                    .push(format!("{r} was not filled in (internal error)")),
            }
        }
        out.params.push(ResolvedParam {
            name: name.clone(),
            value: (!f.pending).then_some(Value {
                text: f.text,
                secret: f.secret,
            }),
            known_after_apply: f.known_after_apply,
            expression: setting.display(),
            no_echo: setting.no_echo,
        });
    }
    out
}

/// `${stack.Output}` for parameter `param`: the output as deployed today; known only after
/// apply when the stack changes in this run, pending when it does not exist yet.
async fn output_input(
    from: &Sources<'_>,
    param: &str,
    stack: &str,
    output: &str,
    f: &mut Filling,
    out: &mut Resolved,
) {
    let reference = format!("${{{stack}.{output}}}");
    let Some(source) = from.env.units.get(stack) else {
        out.errors.push(format!(
            "input {reference}: stack `{stack}` is not deployed in environment `{}`",
            from.env.name
        ));
        return;
    };
    // An update changes only the outputs it says may change.
    let because = from.upstream.get(stack).and_then(|u| match u.action {
        Action::Create | Action::Pending => Some(format!("{stack} is new")),
        Action::Update => match &u.changing_outputs {
            Some(m) => m.get(output).cloned(),
            None => Some(format!("{stack} changes")),
        },
        _ => None,
    });
    let changing = because.is_some();
    let cfn = from.session.in_region(&source.region).cfn;
    let current = match from.stacks.get(&cfn, &source.stack_name).await {
        Ok(info) => info.and_then(|i| i.outputs.get(output).cloned()),
        Err(e) => {
            out.errors.push(format!("input {reference}: {e}"));
            return;
        }
    };
    let tainted = current
        .as_deref()
        .is_some_and(|v| from.taint.check(Some(stack), output, v));
    f.secret |= tainted;
    let input = |state| Input {
        parameter: param.to_string(),
        reference: reference.clone(),
        from_stack: stack.to_string(),
        because: because.clone(),
        state,
    };
    match (current, changing) {
        (Some(v), false) => f.text.push_str(&v),
        (Some(v), true) => {
            f.known_after_apply = true;
            let shown = if tainted {
                crate::desired::MASK.to_string()
            } else {
                v.clone()
            };
            out.inputs.push(input(InputState::KnownAfterApply {
                current: Some(shown),
            }));
            f.text.push_str(&v);
        }
        (None, true) => {
            f.pending = true;
            out.inputs.push(input(InputState::Pending));
        }
        (None, false) => out.errors.push(format!(
            "input {reference}: stack {} has no output `{output}`; deploy `{stack}` first (plan it with this one, or check the output name)",
            source.stack_name
        )),
    }
}

/// `${external:stack-name.Output}`: an output of a stack outside the environment, which must
/// exist.
async fn external_input(
    from: &Sources<'_>,
    stack_name: &crate::config::expr::Expr,
    output: &str,
    f: &mut Filling,
    out: &mut Resolved,
) {
    let reference = format!("${{external:{stack_name}.{output}}}");
    let Some(stack_name) = stack_name.as_literal() else {
        out.errors.push(format!(
            "input {reference}: the stack name is not fully known"
        ));
        return;
    };
    if !crate::config::expr::is_stack_name(&stack_name) {
        out.errors.push(format!(
            "input {reference}: `{stack_name}` is not a CloudFormation stack name (a letter, then letters, digits and hyphens, at most 128 characters)"
        ));
        return;
    }
    match from.stacks.get(&from.session.cfn, &stack_name).await {
        Ok(Some(info)) => match info.outputs.get(output) {
            Some(v) => {
                f.secret |= from.taint.check(None, output, v);
                f.text.push_str(v);
            }
            None => out.errors.push(format!(
                "input {reference}: stack {stack_name} has no output `{output}`"
            )),
        },
        Ok(None) => out.errors.push(format!(
            "input {reference}: there is no stack {stack_name} in account {} region {} (it is not deployed by this environment: deploy it first)",
            from.env.account, from.session.region
        )),
        Err(e) => out.errors.push(format!("input {reference}: {e}")),
    }
}

/// `${env:ENVIRONMENT.stack.Output}`: an output of a stack of another environment, read with
/// that environment's session; the stack must exist (that environment is applied by its own
/// runs, not this one's).
async fn remote_input(
    from: &Sources<'_>,
    environment: &str,
    stack: &str,
    output: &str,
    f: &mut Filling,
    out: &mut Resolved,
) {
    let reference = format!("${{env:{environment}.{stack}.{output}}}");
    let Some(source) = from.env.remote.stack(environment, stack) else {
        out.errors.push(format!(
            "input {reference}: environment `{environment}` deploys no stack `{stack}` at this revision (see formwork validate)"
        ));
        return;
    };
    let session = match from
        .remote
        .get(environment)
        .map(|r| (&r.session, &r.stacks))
    {
        Some((Ok(session), stacks)) => (session, stacks),
        Some((Err(e), _)) => {
            out.errors.push(format!(
                "input {reference}: cannot read the stacks of environment `{environment}` (account {} region {}): {e}",
                source.account, source.region
            ));
            return;
        }
        None => {
            out.errors.push(format!(
                "input {reference}: no session was opened for environment `{environment}`"
            ));
            return;
        }
    };
    let (session, stacks) = session;
    let cfn = session.in_region(&source.stack_region).cfn;
    match stacks.get(&cfn, &source.stack_name).await {
        Ok(Some(info)) => match info.outputs.get(output) {
            Some(v) => {
                let known = source.secret_outputs.contains(output);
                f.secret |= from.taint.check_known(known, v);
                f.text.push_str(v);
            }
            None => out.errors.push(format!(
                "input {reference}: stack {} of environment `{environment}` has no output `{output}` yet (its status: {}); apply environment `{environment}` first",
                source.stack_name, info.status
            )),
        },
        Ok(None) => out.errors.push(format!(
            "input {reference}: stack {} of environment `{environment}` (account {} region {}) does not exist yet; apply environment `{environment}` first",
            source.stack_name, source.account, source.stack_region
        )),
        Err(e) => out.errors.push(format!("input {reference}: {e}")),
    }
}

/// `${secretsmanager:NAME[:KEY]}`: the secret's string (or one key of it), always secret.
async fn secret_input(
    from: &Sources<'_>,
    reference: &Reference,
    name: &crate::config::expr::Expr,
    key: Option<&str>,
    f: &mut Filling,
    out: &mut Resolved,
) {
    let Some(name) = name.as_literal() else {
        out.errors.push(format!(
            "the secret's name in {reference} is not fully known"
        ));
        return;
    };
    match from.secrets.value(&name, key).await {
        Ok(v) => {
            from.taint.masker.add(&v);
            f.secret = true;
            f.text.push_str(&v);
        }
        Err(e) => out.errors.push(format!("input {reference}: {e}")),
    }
}

/// `${ssm:/path}` for parameter `param`: the SSM parameter's value, read beforehand; a
/// SecureString is secret. When a stack of the environment creates the parameter and changes in
/// this run, the value is known only after apply (pending while it does not exist yet).
fn ssm_input(
    unit: &Unit,
    from: &Sources<'_>,
    param: &str,
    path: &crate::config::expr::Expr,
    f: &mut Filling,
    out: &mut Resolved,
) {
    let Some(name) = path.as_literal() else {
        out.errors.push(format!(
            "the SSM path in ${{ssm:{path}}} is not fully known"
        ));
        return;
    };
    let created_by = unit.dependencies.iter().find_map(|d| match &d.kind {
        DependencyKind::SsmParameter { name: n, resource } if *n == name => {
            Some((d.stack.as_str(), resource.as_str()))
        }
        _ => None,
    });
    let creator = created_by.map(|(stack, _)| stack);
    // An update changes the value only when it changes the parameter's resource.
    let because = created_by.and_then(|(stack, resource)| {
        from.upstream.get(stack).and_then(|u| match u.action {
            Action::Create | Action::Pending => Some(format!("{stack} is new")),
            Action::Update => u
                .resources
                .iter()
                .any(|r| r.logical_id == resource)
                .then(|| format!("{resource} changes")),
            _ => None,
        })
    });
    let changing = because.is_some();
    let input = |state| Input {
        parameter: param.to_string(),
        reference: format!("${{ssm:{name}}}"),
        from_stack: creator.unwrap_or_default().to_string(),
        because: because.clone(),
        state,
    };
    match (from.ssm.found.get(&name), changing) {
        (Some(v), changing) => {
            f.secret |= v.secret;
            if changing {
                f.known_after_apply = true;
                let shown = if v.secret {
                    crate::desired::MASK.to_string()
                } else {
                    v.value.clone()
                };
                out.inputs.push(input(InputState::KnownAfterApply {
                    current: Some(shown),
                }));
            }
            f.text.push_str(&v.value);
        }
        (None, true) => {
            f.pending = true;
            out.inputs.push(input(InputState::Pending));
        }
        (None, false) => out.errors.push(match creator {
            Some(c) => format!(
                "SSM parameter {name} does not exist in account {} region {}; stack `{c}` of this environment creates it: apply it first (plan it with this one)",
                from.env.account, from.session.region
            ),
            None => format!(
                "SSM parameter {name} does not exist in account {} region {}",
                from.env.account, from.session.region
            ),
        }),
    }
}
