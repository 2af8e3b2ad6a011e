//! OffsetFetch: committed offsets of one group (v1-7) or several (v8+); partitions
//! without a commit answer -1, and `topics: null` means every committed partition.
//! As in Kafka, fetching needs DESCRIBE on the group and on each topic; of every
//! committed partition the caller sees only those of topics it may describe.

use std::collections::BTreeMap;

use gregor_coordinator::FetchedOffset;
use gregor_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use gregor_protocol::kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;

use super::{blocking, str_bytes, RequestContext};
use crate::authz::{Op, Res};
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
        let groups: Vec<(String, Result<Authorized, ResponseError>, Member)> = request
            .groups
            .iter()
            .map(|g| {
                let topics = g
                    .topics
                    .as_ref()
                    .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
                let member = with_member.then(|| (g.member_id.as_ref().map(ToString::to_string), g.member_epoch));
                (g.group_id.to_string(), authorize(ctx, &g.group_id, topics), member)
            })
            .collect();
        let stable = request.require_stable;
        let results = blocking(move || {
            groups
                .into_iter()
                .map(|(g, authorized, m)| {
                    let result = authorized.and_then(|a| {
                        let all = a.topics.is_none();
                        fetch(&broker, &g, a.topics, m, stable).map(|offsets| (offsets, all, a.denied))
                    });
                    (g, result)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let groups = results.into_iter().map(|(group, result)| group_response(group, visible(ctx, result))).collect();
        return Ok(OffsetFetchResponse::default().with_groups(groups));
    }
    let group = request.group_id.to_string();
    let topics: Wanted = request
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
    let authorized = match authorize(ctx, &group, topics.clone()) {
        Ok(authorized) => authorized,
        Err(e) if ctx.api_version >= 2 => return Ok(OffsetFetchResponse::default().with_error_code(e.code())),
        // v1 has no top-level error: every requested partition carries it, as in Kafka.
        Err(e) => {
            let offsets = topics.into_iter().flatten().flat_map(|(t, ps)| refused(t, ps, e)).collect();
            return Ok(OffsetFetchResponse::default().with_topics(legacy_topics(offsets)));
        }
    };
    let stable = request.require_stable;
    let result = blocking(move || {
        let all = authorized.topics.is_none();
        fetch(&broker, &group, authorized.topics, None, stable).map(|offsets| (offsets, all, authorized.denied))
    })
    .await;
    Ok(match visible(ctx, result) {
        Ok(offsets) => OffsetFetchResponse::default().with_topics(legacy_topics(offsets)),
        Err(e) if ctx.api_version >= 2 => OffsetFetchResponse::default().with_error_code(e.code()),
        // v1 has no top-level error: every requested partition would carry it; none known here.
        Err(_) => OffsetFetchResponse::default(),
    })
}

/// What the caller may fetch of one group, as Kafka decides it: DESCRIBE on the group
/// (else GROUP_AUTHORIZATION_FAILED), and of the topics asked for those it may DESCRIBE;
/// the others are answered TOPIC_AUTHORIZATION_FAILED.
struct Authorized {
    topics: Wanted,
    denied: Vec<FetchedOffset>,
}

fn authorize(ctx: &RequestContext<'_>, group: &str, topics: Wanted) -> Result<Authorized, ResponseError> {
    if !ctx.allowed(Op::Describe, Res::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    let Some(topics) = topics else { return Ok(Authorized { topics: None, denied: Vec::new() }) };
    let (allowed, denied): (Vec<_>, Vec<_>) =
        topics.into_iter().partition(|(t, _)| ctx.allowed(Op::Describe, Res::Topic, t));
    let denied =
        denied.into_iter().flat_map(|(t, ps)| refused(t, ps, ResponseError::TopicAuthorizationFailed)).collect();
    Ok(Authorized { topics: Some(allowed), denied })
}

/// Partitions answered with an error and no offset.
fn refused(topic: String, partitions: Vec<i32>, error: ResponseError) -> impl Iterator<Item = FetchedOffset> {
    partitions.into_iter().map(move |partition| FetchedOffset {
        topic: topic.clone(),
        partition,
        offset: -1,
        leader_epoch: -1,
        metadata: Some(String::new()),
        error_code: error.code(),
    })
}

/// A fetch's offsets as the caller may see them: of every committed partition (`all`),
/// only those of topics it may DESCRIBE, as Kafka; then the refused ones.
fn visible(
    ctx: &RequestContext<'_>,
    result: Result<(Vec<FetchedOffset>, bool, Vec<FetchedOffset>), ResponseError>,
) -> Result<Vec<FetchedOffset>, ResponseError> {
    result.map(|(mut offsets, all, denied)| {
        if all {
            offsets.retain(|o| ctx.allowed(Op::Describe, Res::Topic, &o.topic));
        }
        offsets.extend(denied);
        offsets
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
