//! Server-side assignors (Kafka's `group.consumer.assignors`): `uniform` and `range`.
//!
//! Both give every subscribed partition to exactly one subscribed member and split each
//! topic evenly (within one partition) over its subscribers. `uniform` is sticky: members
//! keep what they had as far as balance allows, so a new member only moves the partitions
//! it takes over. `range` lays each topic out in contiguous ranges over the subscribers
//! sorted by member id, so co-partitioned topics line up (partition N of every topic goes
//! to the same member).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Partitions;

pub(crate) const UNIFORM: &str = "uniform";
pub(crate) const RANGE: &str = "range";

/// The assignors this coordinator implements.
pub(crate) fn is_known(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// One member as the assignor sees it.
#[derive(Debug)]
pub(crate) struct AssignorMember<'a> {
    pub(crate) member_id: &'a str,
    pub(crate) topics: BTreeSet<Uuid>,
    /// The member's current target, for stickiness.
    pub(crate) previous: Option<&'a Partitions>,
}

/// The target assignment of every member (members without partitions map to an empty
/// assignment). `partition_counts` holds the subscribed topics that exist.
pub(crate) fn assign(
    assignor: &str,
    members: &[AssignorMember<'_>],
    partition_counts: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Partitions> {
    let mut result: BTreeMap<String, Partitions> =
        members.iter().map(|m| (m.member_id.to_owned(), Partitions::new())).collect();
    let mut totals: BTreeMap<&str, usize> = members.iter().map(|m| (m.member_id, 0)).collect();
    for (topic, count) in partition_counts {
        let count = usize::try_from(*count).unwrap_or(0);
        let mut subscribers: Vec<&AssignorMember<'_>> = members.iter().filter(|m| m.topics.contains(topic)).collect();
        if subscribers.is_empty() || count == 0 {
            continue;
        }
        subscribers.sort_by_key(|m| m.member_id);
        let layout = if assignor == RANGE {
            range_topic(&subscribers, count)
        } else {
            uniform_topic(*topic, &subscribers, count, &totals)
        };
        for (member_id, partitions) in layout {
            if partitions.is_empty() {
                continue;
            }
            *totals.entry(member_id).or_default() += partitions.len();
            if let Some(assignment) = result.get_mut(member_id) {
                let _ = assignment.insert(*topic, partitions);
            }
        }
    }
    result
}

/// Kafka's classic `RangeAssignor` layout: the first `count % n` members (by id) get one
/// partition more, each member a contiguous range.
fn range_topic<'a>(subscribers: &[&AssignorMember<'a>], count: usize) -> Vec<(&'a str, BTreeSet<i32>)> {
    let n = subscribers.len();
    let (base, extra) = (count / n, count % n);
    let mut start = 0usize;
    subscribers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let len = base + usize::from(i < extra);
            let range = (start..start + len).filter_map(|p| i32::try_from(p).ok()).collect();
            start += len;
            (m.member_id, range)
        })
        .collect()
}

/// One topic of the uniform assignor. Each subscriber's quota is `count / n`, and
/// `count % n` of them get one more: first those that already held that many (so nothing
/// moves), then those with the fewest partitions so far (so totals stay even across
/// topics), then by member id. Members keep their previous partitions up to their quota;
/// the rest go to members under quota, lowest partition and member id first.
fn uniform_topic<'a>(
    topic: Uuid,
    subscribers: &[&AssignorMember<'a>],
    count: usize,
    totals: &BTreeMap<&str, usize>,
) -> Vec<(&'a str, BTreeSet<i32>)> {
    let n = subscribers.len();
    let (base, extra) = (count / n, count % n);
    let previous = |m: &AssignorMember<'_>| -> Vec<i32> {
        m.previous
            .and_then(|p| p.get(&topic))
            .map(|set| set.iter().copied().filter(|p| usize::try_from(*p).is_ok_and(|p| p < count)).collect())
            .unwrap_or_default()
    };
    let mut by_priority: Vec<(usize, &AssignorMember<'a>)> = subscribers.iter().copied().enumerate().collect();
    by_priority.sort_by_key(|(_, m)| {
        (Reverse(previous(m).len().min(base + 1)), totals.get(m.member_id).copied().unwrap_or(0), m.member_id)
    });
    let mut quotas = vec![base; n];
    for (index, _) in by_priority.iter().take(extra) {
        quotas[*index] += 1;
    }
    let mut taken = BTreeSet::new();
    let mut layout: Vec<(&'a str, BTreeSet<i32>)> = subscribers
        .iter()
        .zip(&quotas)
        .map(|(m, quota)| {
            let kept: BTreeSet<i32> = previous(m).into_iter().filter(|p| !taken.contains(p)).take(*quota).collect();
            taken.extend(kept.iter().copied());
            (m.member_id, kept)
        })
        .collect();
    let mut free = (0..count).filter_map(|p| i32::try_from(p).ok()).filter(|p| !taken.contains(p));
    for ((_, partitions), quota) in layout.iter_mut().zip(&quotas) {
        while partitions.len() < *quota {
            let Some(p) = free.next() else { break };
            let _ = partitions.insert(p);
        }
    }
    layout
}
