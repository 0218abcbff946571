//! Which outputs of an environment's stacks carry a secret, as far as the config and the
//! templates tell (the `secrets` room marks and scrubs values with it).

use std::collections::{BTreeMap, BTreeSet};

use super::DesiredEnvironment;
use crate::config::expr::Reference;

impl DesiredEnvironment {
    /// The outputs of its stacks that carry a secret, by stack key: an output whose value
    /// carries a NoEcho parameter of its stack, or a parameter set from such an output of
    /// another stack (of this environment, or of another one: `${env:…}`) — followed through
    /// chains of stacks, however long.
    pub fn secret_outputs(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        // Each round can only add outputs, so this ends; chains need one round per link.
        loop {
            let mut grew = false;
            for (key, unit) in &self.units {
                let Some(template) = unit.template.parsed() else {
                    continue;
                };
                let mut secret: BTreeSet<&str> = template
                    .parameters
                    .iter()
                    .filter(|(_, d)| d.no_echo)
                    .map(|(n, _)| n.as_str())
                    .collect();
                for (name, setting) in &unit.parameters {
                    let tainted = setting.no_echo
                        || setting.value.references().into_iter().any(|r| match r {
                            Reference::Output { stack, output } => {
                                out.get(stack).is_some_and(|o| o.contains(output))
                            }
                            Reference::EnvOutput {
                                environment,
                                stack,
                                output,
                            } => self
                                .remote
                                .stack(environment, stack)
                                .is_some_and(|s| s.secret_outputs.contains(output)),
                            _ => false,
                        });
                    if tainted {
                        secret.insert(name.as_str());
                    }
                }
                let carrying = template.outputs_carrying(&secret);
                if carrying.len() > out.get(key).map_or(0, BTreeSet::len) {
                    out.insert(key.clone(), carrying);
                    grew = true;
                }
            }
            if !grew {
                return out;
            }
        }
    }
}
