//! Dropping redeliveries: the delivery ids seen, remembered in memory.

use std::collections::{HashSet, VecDeque};

/// A bounded, in-memory record of the delivery ids seen, to drop redeliveries: when full, the
/// oldest id is forgotten first. It is per process: a daemon running several replicas behind
/// one webhook must record delivery ids in the shared, durable state store instead.
#[derive(Debug)]
pub struct DeliveryDedup {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl DeliveryDedup {
    /// A record of at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DeliveryDedup {
            capacity,
            order: VecDeque::with_capacity(capacity.min(4096)),
            seen: HashSet::with_capacity(capacity.min(4096)),
        }
    }

    /// Records `id`; whether it had not been seen (among the ids still remembered).
    pub fn first_time(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.order.push_back(id.to_string());
        self.seen.insert(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_forgets_the_oldest_first() {
        let mut d = DeliveryDedup::new(2);
        assert!(d.first_time("a"));
        assert!(d.first_time("b"));
        assert!(!d.first_time("a"));
        assert!(d.first_time("c"));
        assert!(d.first_time("a"));
        assert!(!d.first_time("c"));
        let mut one = DeliveryDedup::new(0);
        assert!(one.first_time("a"));
        assert!(!one.first_time("a"));
    }
}
