//! Dependency order: which stacks must be deployed before which, grouped into waves of stacks
//! that can go at the same time, and the cycles that make an order impossible.

use std::collections::BTreeSet;

/// A directed graph over named nodes; an edge `a → b` means `b` depends on `a` (a goes first).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    names: Vec<String>,
    /// `deps[b]` = nodes that `b` depends on.
    deps: Vec<BTreeSet<usize>>,
}

impl Graph {
    /// A graph of the given nodes, in the given order (the order breaks ties within a wave).
    pub fn new(names: impl IntoIterator<Item = String>) -> Graph {
        let names: Vec<String> = names.into_iter().collect();
        let deps = vec![BTreeSet::new(); names.len()];
        Graph { names, deps }
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Records that `dependant` depends on `dependency`. Unknown names are ignored (they are
    /// reported elsewhere).
    pub fn add_dependency(&mut self, dependant: &str, dependency: &str) {
        if let (Some(a), Some(b)) = (self.index(dependant), self.index(dependency)) {
            self.deps[a].insert(b);
        }
    }

    /// The direct dependencies of a node.
    pub fn dependencies(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.deps[i].iter().copied()
    }

    /// The nodes that depend directly on `i`.
    pub fn dependants(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(move |&j| self.deps[j].contains(&i))
    }

    /// Groups the nodes into waves: every node comes in the wave after the last of its
    /// dependencies. Nodes on a cycle (and those behind one) are left out; see [`Graph::cycles`].
    pub fn waves(&self) -> Vec<Vec<usize>> {
        let mut level: Vec<Option<usize>> = vec![None; self.len()];
        let mut waves: Vec<Vec<usize>> = Vec::new();
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..self.len() {
                if level[i].is_some() {
                    continue;
                }
                let mut lvl = 0;
                let mut ready = true;
                for &d in &self.deps[i] {
                    match level[d] {
                        Some(l) => lvl = lvl.max(l + 1),
                        None => {
                            ready = false;
                            break;
                        }
                    }
                }
                if ready {
                    level[i] = Some(lvl);
                    changed = true;
                }
            }
        }
        for (i, l) in level.iter().enumerate() {
            if let Some(l) = *l {
                if waves.len() <= l {
                    waves.resize(l + 1, Vec::new());
                }
                waves[l].push(i);
            }
        }
        waves
    }

    /// One cycle per strongly connected component that has one, as the list of nodes along it
    /// in dependency direction, starting from the component's first node in declaration order:
    /// `[a, b, c]` means a needs b, b needs c, c needs a.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let sccs = self.strongly_connected();
        let mut out = Vec::new();
        for scc in sccs {
            let first = *scc.iter().min().expect("components are not empty");
            let cyclic = scc.len() > 1 || self.deps[first].contains(&first);
            if !cyclic {
                continue;
            }
            let members: BTreeSet<usize> = scc.into_iter().collect();
            if let Some(path) = self.path_back_to(first, &members) {
                out.push(path);
            }
        }
        out.sort();
        out
    }

    /// The shortest path from `start` through `members` back to `start` (breadth first).
    fn path_back_to(&self, start: usize, members: &BTreeSet<usize>) -> Option<Vec<usize>> {
        let mut prev: Vec<Option<usize>> = vec![None; self.len()];
        let mut queue = std::collections::VecDeque::from([start]);
        let mut seen = BTreeSet::from([start]);
        while let Some(n) = queue.pop_front() {
            for &d in &self.deps[n] {
                if !members.contains(&d) {
                    continue;
                }
                if d == start {
                    let mut path = vec![n];
                    let mut cur = n;
                    while let Some(p) = prev[cur] {
                        path.push(p);
                        cur = p;
                    }
                    path.reverse();
                    return Some(path);
                }
                if seen.insert(d) {
                    prev[d] = Some(n);
                    queue.push_back(d);
                }
            }
        }
        None
    }

    /// Tarjan's algorithm, iterative so that deep graphs cannot overflow the stack.
    fn strongly_connected(&self) -> Vec<Vec<usize>> {
        let n = self.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next = 0;
        let mut out = Vec::new();
        for root in 0..n {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
            index[root] = next;
            low[root] = next;
            next += 1;
            stack.push(root);
            on_stack[root] = true;
            work.push((root, self.deps[root].iter().copied().collect()));
            while let Some((v, pending)) = work.last_mut() {
                let v = *v;
                if let Some(w) = pending.pop() {
                    if index[w] == usize::MAX {
                        index[w] = next;
                        low[w] = next;
                        next += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        work.push((w, self.deps[w].iter().copied().collect()));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                } else {
                    work.pop();
                    if let Some((parent, _)) = work.last() {
                        low[*parent] = low[*parent].min(low[v]);
                    }
                    if low[v] == index[v] {
                        let mut comp = Vec::new();
                        while let Some(w) = stack.pop() {
                            on_stack[w] = false;
                            comp.push(w);
                            if w == v {
                                break;
                            }
                        }
                        out.push(comp);
                    }
                }
            }
        }
        out
    }

    /// Every node that depends on `i`, directly or through others.
    pub fn transitive_dependants(&self, i: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![i];
        while let Some(n) = todo.pop() {
            for d in self.dependants(n) {
                if seen.insert(d) {
                    todo.push(d);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::new(nodes.iter().map(|s| s.to_string()));
        for (a, b) in edges {
            g.add_dependency(a, b);
        }
        g
    }

    fn names(g: &Graph, v: &[usize]) -> Vec<String> {
        v.iter().map(|&i| g.name(i).to_string()).collect()
    }

    #[test]
    fn waves_follow_dependencies() {
        let g = graph(
            &["vpc", "sg", "redis", "app", "cdn"],
            &[
                ("sg", "vpc"),
                ("redis", "sg"),
                ("app", "redis"),
                ("app", "vpc"),
            ],
        );
        let w: Vec<Vec<String>> = g.waves().iter().map(|w| names(&g, w)).collect();
        assert_eq!(
            w,
            vec![vec!["vpc", "cdn"], vec!["sg"], vec!["redis"], vec!["app"]]
        );
    }

    #[test]
    fn cycles_are_reported_as_paths() {
        let g = graph(
            &["a", "b", "c", "d"],
            &[("a", "b"), ("b", "c"), ("c", "a"), ("d", "d")],
        );
        let c: Vec<Vec<String>> = g.cycles().iter().map(|c| names(&g, c)).collect();
        assert_eq!(c, vec![vec!["a", "b", "c"], vec!["d"]]);
        assert!(g.waves().iter().flatten().next().is_none());
    }

    proptest! {
        #[test]
        fn waves_respect_every_edge_and_cycles_exist_exactly_when_nodes_are_left(
            n in 1usize..12,
            edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30),
        ) {
            let mut g = Graph::new((0..n).map(|i| i.to_string()));
            for (a, b) in edges {
                if a < n && b < n {
                    g.add_dependency(&a.to_string(), &b.to_string());
                }
            }
            let waves = g.waves();
            let mut level = vec![None; n];
            for (l, w) in waves.iter().enumerate() {
                for &i in w { level[i] = Some(l); }
            }
            for i in 0..n {
                if let Some(li) = level[i] {
                    for d in g.dependencies(i) {
                        prop_assert!(level[d].is_some_and(|ld| ld < li));
                    }
                }
            }
            let placed = level.iter().filter(|l| l.is_some()).count();
            prop_assert_eq!(placed == n, g.cycles().is_empty());
            for cycle in g.cycles() {
                for k in 0..cycle.len() {
                    let next = cycle[(k + 1) % cycle.len()];
                    prop_assert!(g.dependencies(cycle[k]).any(|d| d == next));
                }
            }
        }
    }
}
