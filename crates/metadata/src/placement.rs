//! Replica placement for new partitions, as Kafka's `AdminUtils.assignReplicasToBrokers`
//! does it: leaders spread round-robin from a random start, followers shifted by a random
//! amount that changes every full round (so the same broker pairs do not always share
//! partitions), and, when brokers set `broker.rack`, the brokers taken rack by rack so
//! each partition's replicas land on as many racks as possible.
//!
//! Pure: the random starting points are passed in (the controller draws them from the
//! new topic's random id), so the same inputs always give the same placement.

use std::collections::{BTreeMap, BTreeSet};

/// A broker that can take replicas: its id and rack (`None` when it set no rack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node_id: i32,
    pub rack: Option<String>,
}

/// Where the round-robin starts: `start` picks the first partition's leader, `shift` the
/// distance of its followers; both are taken modulo the number of brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub start: usize,
    pub shift: usize,
}

/// Replica lists for partitions `first_partition..first_partition + count`, leader first.
/// The caller checked `1 <= replication_factor <= brokers.len()`.
pub fn assign(
    brokers: &[Candidate],
    first_partition: i32,
    count: i32,
    replication_factor: usize,
    seed: Seed,
) -> Vec<(i32, Vec<i32>)> {
    let racked = brokers.iter().any(|b| b.rack.is_some());
    let (order, racks) = if racked { rack_alternated(brokers) } else { (sorted_ids(brokers), BTreeMap::new()) };
    let n = order.len();
    if n == 0 || replication_factor == 0 {
        return Vec::new();
    }
    let rack_count = racks.values().collect::<BTreeSet<_>>().len().max(1);
    let start = seed.start % n;
    let mut shift = seed.shift % n;
    (first_partition..first_partition + count)
        .map(|partition| {
            let p = usize::try_from(partition).unwrap_or(0);
            if p > 0 && p % n == 0 {
                shift += 1;
            }
            let first = (p + start) % n;
            let replicas = if racked {
                rack_aware_replicas(&order, &racks, rack_count, first, shift, replication_factor)
            } else {
                (0..replication_factor - 1).map(|j| order[follower_index(first, shift, j, n)]).fold(
                    vec![order[first]],
                    |mut all, b| {
                        all.push(b);
                        all
                    },
                )
            };
            (partition, replicas)
        })
        .collect()
}

/// Kafka's `replicaIndex`: the j-th follower of a leader at `first`, never the leader.
fn follower_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    if n == 1 {
        return first;
    }
    (first + 1 + (shift + j) % (n - 1)) % n
}

/// Walks the followers' round-robin, taking a broker only if its rack has no replica yet
/// (or every rack has one) and it has none itself (or every broker has one).
fn rack_aware_replicas(
    order: &[i32],
    racks: &BTreeMap<i32, String>,
    rack_count: usize,
    first: usize,
    shift: usize,
    replication_factor: usize,
) -> Vec<i32> {
    let n = order.len();
    let leader = order[first];
    let mut replicas = vec![leader];
    let mut used_racks: BTreeSet<&str> = BTreeSet::from([racks[&leader].as_str()]);
    let mut k = 0;
    while replicas.len() < replication_factor && k < n * n * 2 {
        let broker = order[follower_index(first, shift * rack_count, k, n)];
        let rack = racks[&broker].as_str();
        let rack_ok = !used_racks.contains(rack) || used_racks.len() == rack_count;
        let broker_ok = !replicas.contains(&broker);
        if rack_ok && broker_ok {
            replicas.push(broker);
            let _ = used_racks.insert(rack);
        }
        k += 1;
    }
    replicas
}

fn sorted_ids(brokers: &[Candidate]) -> Vec<i32> {
    let mut ids: Vec<i32> = brokers.iter().map(|b| b.node_id).collect();
    ids.sort_unstable();
    ids
}

/// Kafka's `getRackAlternatedBrokerList`: the first broker of each rack (racks in name
/// order), then the second of each, and so on. A broker without a rack counts as the
/// rack "" (KRaft places such brokers instead of refusing the request).
fn rack_alternated(brokers: &[Candidate]) -> (Vec<i32>, BTreeMap<i32, String>) {
    let racks: BTreeMap<i32, String> =
        brokers.iter().map(|b| (b.node_id, b.rack.clone().unwrap_or_default())).collect();
    let mut by_rack: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (id, rack) in &racks {
        by_rack.entry(rack.as_str()).or_default().push(*id);
    }
    let rounds = by_rack.values().map(Vec::len).max().unwrap_or(0);
    let order = (0..rounds).flat_map(|i| by_rack.values().filter_map(move |ids| ids.get(i).copied())).collect();
    (order, racks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(racks: &[Option<&str>]) -> Vec<Candidate> {
        racks.iter().enumerate().map(|(i, r)| Candidate { node_id: i as i32 + 1, rack: r.map(str::to_owned) }).collect()
    }

    #[test]
    fn given_no_racks_should_spread_leaders_and_never_repeat_a_broker() {
        let all = brokers(&[None; 5]);
        for start in 0..5 {
            for shift in 0..5 {
                let placed = assign(&all, 0, 10, 3, Seed { start, shift });
                let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                for (_, replicas) in &placed {
                    assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{replicas:?}");
                    *leaders.entry(replicas[0]).or_default() += 1;
                }
                assert!(leaders.values().all(|&c| c == 2), "{leaders:?}");
            }
        }
    }

    #[test]
    fn given_seeds_should_start_at_different_brokers() {
        let all = brokers(&[None; 3]);
        let firsts: BTreeSet<i32> =
            (0..3).map(|start| assign(&all, 0, 1, 1, Seed { start, shift: 0 })[0].1[0]).collect();
        assert_eq!(firsts.len(), 3);
    }

    #[test]
    fn given_racks_should_put_each_partition_on_distinct_racks() {
        let all = brokers(&[Some("a"), Some("a"), Some("b"), Some("b"), Some("c"), Some("c")]);
        let rack = |id: i32| all[(id - 1) as usize].rack.clone().unwrap();
        for start in 0..6 {
            for shift in 0..6 {
                for (_, replicas) in assign(&all, 0, 12, 3, Seed { start, shift }) {
                    let racks: BTreeSet<String> = replicas.iter().map(|&b| rack(b)).collect();
                    assert_eq!(racks.len(), 3, "{replicas:?}");
                }
            }
        }
    }

    #[test]
    fn given_more_replicas_than_racks_should_use_every_rack_then_every_broker() {
        let all = brokers(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        for (_, replicas) in assign(&all, 0, 8, 3, Seed { start: 1, shift: 2 }) {
            assert_eq!(replicas.iter().collect::<BTreeSet<_>>().len(), 3, "{replicas:?}");
            let racks: BTreeSet<_> = replicas.iter().map(|&b| all[(b - 1) as usize].rack.clone()).collect();
            assert_eq!(racks.len(), 2, "{replicas:?}");
        }
    }

    #[test]
    fn given_a_broker_without_rack_should_still_place_on_it() {
        let all = brokers(&[Some("a"), None, Some("b")]);
        let placed = assign(&all, 0, 3, 3, Seed { start: 0, shift: 0 });
        assert!(placed.iter().all(|(_, r)| r.len() == 3));
    }
}
