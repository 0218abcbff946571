//! Dependencies between stacks with the place each was first written, and one error for every
//! cycle they close.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Loc};
use crate::graph::Graph;

/// A dependency graph of stacks, and where each of its edges was written.
pub(super) struct Edges {
    graph: Graph,
    /// By (dependant, dependency): the first place the dependency was written.
    locs: HashMap<(String, String), Loc>,
}

impl Edges {
    /// No dependencies yet between the stacks `names`, in this order.
    pub(super) fn new(names: impl IntoIterator<Item = String>) -> Edges {
        Edges {
            graph: Graph::new(names),
            locs: HashMap::new(),
        }
    }

    /// Records that `dependant` waits for `dependency`, written at `loc`.
    pub(super) fn add(&mut self, dependant: &str, dependency: &str, loc: &Loc) {
        self.graph.add_dependency(dependant, dependency);
        self.locs
            .entry((dependant.to_string(), dependency.to_string()))
            .or_insert_with(|| loc.clone());
    }

    /// One error per dependency cycle, naming its path and pointing at its first edge.
    pub(super) fn cycle_diagnostics(&self) -> Vec<Diagnostic> {
        let graph = &self.graph;
        let mut out = Vec::new();
        for cycle in graph.cycles() {
            let names: Vec<&str> = cycle.iter().map(|&i| graph.name(i)).collect();
            let Some(&first) = names.first() else {
                continue;
            };
            let mut path = names.join(" → ");
            path.push_str(" → ");
            path.push_str(first);
            let first_edge = (
                first.to_string(),
                names.get(1).copied().unwrap_or(first).to_string(),
            );
            out.push(
                Diagnostic::error(format!("dependency cycle: {path}"))
                    .at_opt(self.locs.get(&first_edge).cloned())
                    .label(format!(
                        "`{}` waits for `{}` here",
                        first_edge.0, first_edge.1
                    ))
                    .help("each stack must be deployable after the stacks it takes outputs from or needs; break the cycle by removing one of these references"),
            );
        }
        out
    }

    /// The dependency graph.
    pub(super) fn into_graph(self) -> Graph {
        self.graph
    }
}
