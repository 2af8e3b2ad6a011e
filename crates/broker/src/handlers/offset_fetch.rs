//! OffsetFetch: committed offsets of one group (v1-7) or several (v8+); partitions
//! without a commit answer -1, and `topics: null` means every committed partition.

use std::collections::BTreeMap;

use gregor_coordinator::FetchedOffset;
use gregor_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use gregor_protocol::kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::broker::Broker;
use crate::BrokerError;

type Wanted = Option<Vec<(String, Vec<i32>)>>;

pub(crate) async fn handle(
    ctx: &RequestContext<'_>,
    request: OffsetFetchRequest,
) -> Result<OffsetFetchResponse, BrokerError> {
    let broker = ctx.broker.clone();
    if ctx.api_version >= 8 {
        let with_member = ctx.api_version >= 9;
        let groups: Vec<(String, Wanted, Member)> = request
            .groups
            .iter()
            .map(|g| {
                let topics = g
                    .topics
                    .as_ref()
                    .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
                let member = with_member.then(|| (g.member_id.as_ref().map(ToString::to_string), g.member_epoch));
                (g.group_id.to_string(), topics, member)
            })
            .collect();
        let stable = request.require_stable;
        let results = blocking(move || {
            groups.into_iter().map(|(g, t, m)| (g.clone(), fetch(&broker, &g, t, m, stable))).collect::<Vec<_>>()
        })
        .await;
        let groups = results.into_iter().map(|(group, result)| group_response(group, result)).collect();
        return Ok(OffsetFetchResponse::default().with_groups(groups));
    }
    let group = request.group_id.to_string();
    let topics: Wanted = request
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
    let stable = request.require_stable;
    let result = blocking(move || fetch(&broker, &group, topics, None, stable)).await;
    Ok(match result {
        Ok(offsets) => OffsetFetchResponse::default().with_topics(legacy_topics(offsets)),
        Err(e) if ctx.api_version >= 2 => OffsetFetchResponse::default().with_error_code(e.code()),
        // v1 has no top-level error: every requested partition would carry it; none known here.
        Err(_) => OffsetFetchResponse::default(),
    })
}

/// A consumer-group member (KIP-848, v9+) fetching its own offsets names itself and its
/// epoch so the coordinator can refuse stale members; `None` for everyone else.
type Member = Option<(Option<String>, i32)>;

/// `require_stable` (v7+): a partition with a transactional commit not yet decided
/// answers UNSTABLE_OFFSET_COMMIT, which clients retry, instead of an older offset.
fn fetch(
    broker: &Broker,
    group: &str,
    topics: Wanted,
    member: Member,
    require_stable: bool,
) -> Result<Vec<FetchedOffset>, ResponseError> {
    if group.is_empty() {
        return Err(ResponseError::InvalidGroupId);
    }
    broker.groups.read_shard(broker, group, |shard, _| {
        if let Some((member_id, epoch)) = &member {
            shard.validate_offset_fetch(group, member_id.as_deref(), *epoch)?;
        }
        let mut offsets = shard.fetch_offsets(group, topics.as_deref())?;
        for o in
            offsets.iter_mut().filter(|o| require_stable && shard.has_pending_txn_offset(group, &o.topic, o.partition))
        {
            o.offset = -1;
            o.error_code = ResponseError::UnstableOffsetCommit.code();
        }
        Ok(offsets)
    })?
}

fn by_topic(offsets: Vec<FetchedOffset>) -> BTreeMap<String, Vec<FetchedOffset>> {
    let mut topics: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
    for o in offsets {
        topics.entry(o.topic.clone()).or_default().push(o);
    }
    topics
}

fn legacy_topics(offsets: Vec<FetchedOffset>) -> Vec<OffsetFetchResponseTopic> {
    by_topic(offsets)
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|o| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(o.partition)
                        .with_committed_offset(o.offset)
                        .with_committed_leader_epoch(o.leader_epoch)
                        .with_metadata(o.metadata.as_deref().map(str_bytes))
                        .with_error_code(o.error_code)
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions)
        })
        .collect()
}

fn group_response(group: String, result: Result<Vec<FetchedOffset>, ResponseError>) -> OffsetFetchResponseGroup {
    let response = OffsetFetchResponseGroup::default().with_group_id(GroupId(str_bytes(&group)));
    let offsets = match result {
        Ok(offsets) => offsets,
        Err(e) => return response.with_error_code(e.code()),
    };
    let topics = by_topic(offsets)
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|o| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(o.partition)
                        .with_committed_offset(o.offset)
                        .with_committed_leader_epoch(o.leader_epoch)
                        .with_metadata(o.metadata.as_deref().map(str_bytes))
                        .with_error_code(o.error_code)
                })
                .collect();
            OffsetFetchResponseTopics::default().with_name(TopicName(str_bytes(&name))).with_partitions(partitions)
        })
        .collect();
    response.with_topics(topics)
}
