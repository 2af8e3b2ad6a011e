//! Fetch from the closest replica (KIP-392): the leader tells a consumer that sent its
//! `client.rack` which replica to read from instead (`preferred_read_replica`), as
//! Kafka's `RackAwareReplicaSelector` chooses it.

/// One replica as the selector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView<'a> {
    pub broker_id: i32,
    pub rack: Option<&'a str>,
    pub log_end_offset: i64,
    pub last_caught_up_ms: i64,
}

/// Kafka's `replica.selector.class` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplicaSelector {
    /// `LeaderSelector`, and the default (no class): consumers read from the leader.
    #[default]
    Leader,
    /// `RackAwareReplicaSelector`: a replica in the consumer's rack, the leader first.
    RackAware,
}

impl ReplicaSelector {
    /// From the config value; `Err` for a class Gregor does not have.
    pub fn from_class(class: Option<&str>) -> Result<Self, String> {
        match class.map(str::trim).filter(|c| !c.is_empty()) {
            None => Ok(Self::Leader),
            Some("org.apache.kafka.common.replica.LeaderSelector") => Ok(Self::Leader),
            Some("org.apache.kafka.common.replica.RackAwareReplicaSelector") => Ok(Self::RackAware),
            Some(other) => Err(format!(
                "replica.selector.class '{other}' is not available: use \
                 org.apache.kafka.common.replica.RackAwareReplicaSelector or LeaderSelector"
            )),
        }
    }

    /// The replica the consumer in `client_rack` should read from. `candidates` are the
    /// replicas that may serve it (in sync, alive, holding the fetch offset), the leader
    /// among them. Returns the leader's id when nothing closer exists.
    pub fn select(self, client_rack: &str, leader: &ReplicaView<'_>, candidates: &[ReplicaView<'_>]) -> i32 {
        if self == Self::Leader || client_rack.is_empty() {
            return leader.broker_id;
        }
        if leader.rack == Some(client_rack) {
            return leader.broker_id;
        }
        candidates
            .iter()
            .filter(|r| r.rack == Some(client_rack))
            .max_by_key(|r| (r.log_end_offset, r.last_caught_up_ms))
            .map_or(leader.broker_id, |r| r.broker_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(broker_id: i32, rack: &str, log_end_offset: i64) -> ReplicaView<'_> {
        ReplicaView { broker_id, rack: Some(rack), log_end_offset, last_caught_up_ms: 0 }
    }

    #[test]
    fn given_rack_aware_selector_should_prefer_the_consumers_rack() {
        let leader = view(1, "a", 100);
        let all = [leader.clone(), view(2, "b", 90), view(3, "b", 95), view(4, "c", 100)];
        let rack_aware = ReplicaSelector::RackAware;
        assert_eq!(rack_aware.select("b", &leader, &all), 3, "the most caught-up replica of rack b");
        assert_eq!(rack_aware.select("a", &leader, &all), 1, "the leader when it is in the rack");
        assert_eq!(rack_aware.select("z", &leader, &all), 1, "no replica in the rack: the leader");
        assert_eq!(rack_aware.select("", &leader, &all), 1, "no client rack: the leader");
        assert_eq!(ReplicaSelector::Leader.select("b", &leader, &all), 1);
    }

    #[test]
    fn given_class_names_should_map_kafkas_selectors() {
        assert_eq!(ReplicaSelector::from_class(None), Ok(ReplicaSelector::Leader));
        assert_eq!(
            ReplicaSelector::from_class(Some("org.apache.kafka.common.replica.RackAwareReplicaSelector")),
            Ok(ReplicaSelector::RackAware)
        );
        assert!(ReplicaSelector::from_class(Some("com.example.Mine")).is_err());
    }
}
