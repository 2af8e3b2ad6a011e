//! What members subscribe to: topic names, or a regular expression (KIP-848 v1) matched
//! against the broker's topics, and the hash that tells when those topics changed.

use std::collections::{BTreeMap, BTreeSet};

use regex_automata::meta::Regex;
use uuid::Uuid;

use super::consumer_group::{ConsumerGroup, ConsumerMember};
use crate::TopicsView;

/// Compiled programs are bounded so a hostile pattern cannot take the coordinator's memory;
/// matching is linear in the topic name whatever the pattern (RE2 semantics, as Kafka's RE2J).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Kafka's `Topic.isInternal`: regex subscriptions never match these.
const INTERNAL_TOPICS: [&str; 3] = ["__consumer_offsets", "__transaction_state", "__share_group_state"];

/// Compiles a subscription pattern, matched against whole topic names as Java's
/// `Matcher.matches` does. The error is the parser's message.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .configure(Regex::config().nfa_size_limit(Some(REGEX_SIZE_LIMIT)).hybrid_cache_capacity(REGEX_SIZE_LIMIT))
        .build(&format!("^(?:{pattern})$"))
        .map_err(|e| e.to_string())
}

/// The topics each distinct regex of the group matches now. A stored pattern that no
/// longer compiles (written by another coordinator) matches nothing.
pub(crate) fn resolve_regexes<'a>(
    members: impl Iterator<Item = &'a ConsumerMember>,
    topics: &TopicsView,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut resolved = BTreeMap::new();
    for pattern in members.filter_map(|m| m.subscribed_topic_regex.as_deref()) {
        if resolved.contains_key(pattern) {
            continue;
        }
        let matched = compile(pattern)
            .map(|re| {
                topics
                    .keys()
                    .filter(|t| !INTERNAL_TOPICS.contains(&t.as_str()) && re.is_match(t.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let _ = resolved.insert(pattern.to_owned(), matched);
    }
    resolved
}

/// The existing topics a member subscribes to, as topic ids.
pub(crate) fn member_topic_ids(
    member: &ConsumerMember,
    topics: &TopicsView,
    regexes: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeSet<Uuid> {
    let by_regex = member.subscribed_topic_regex.as_ref().and_then(|r| regexes.get(r)).into_iter().flatten();
    member
        .subscribed_topic_names
        .iter()
        .chain(by_regex)
        .filter_map(|name| topics.get(name).map(|(id, _)| *id))
        .collect()
}

/// The group's subscribed topics that exist: name -> (id, partitions).
pub(crate) fn subscribed_metadata(
    group: &ConsumerGroup,
    topics: &TopicsView,
    regexes: &BTreeMap<String, BTreeSet<String>>,
) -> BTreeMap<String, (Uuid, i32)> {
    let mut out = BTreeMap::new();
    for member in group.members.values() {
        let by_regex = member.subscribed_topic_regex.as_ref().and_then(|r| regexes.get(r)).into_iter().flatten();
        for name in member.subscribed_topic_names.iter().chain(by_regex) {
            if let Some(meta) = topics.get(name) {
                let _ = out.insert(name.clone(), *meta);
            }
        }
    }
    out
}

/// FNV-1a over the sorted (name, id, partitions) entries: deterministic across restarts.
/// Kafka 4.1 computes its own (murmur3) hash; a Kafka reading these records sees a
/// different value and bumps the epoch once, exactly as after an upgrade from 4.0.
pub(crate) fn metadata_hash(metadata: &BTreeMap<String, (Uuid, i32)>) -> i64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, (id, partitions)) in metadata {
        feed(&(name.len() as u64).to_be_bytes());
        feed(name.as_bytes());
        feed(id.as_bytes());
        feed(&partitions.to_be_bytes());
    }
    // 0 means "no hash" in the record, so it is never produced.
    i64::from_be_bytes(hash.max(1).to_be_bytes())
}
