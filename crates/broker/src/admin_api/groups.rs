//! Consumer groups for the admin API and the console: the groups this node coordinates
//! with their lag, one group's members, assignments and per-partition lag, offset resets
//! with the targets and dry run of `gregor groups reset-offsets` (refused while the group
//! has members, as kafka-consumer-groups.sh refuses), and deletion as DeleteGroups does.

use gregor_coordinator::GroupResponse;
use gregor_protocol::consumer_protocol::decode_assignment;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::{error_name, TopicPartition};

use super::AdminError;
use crate::broker::{now_ms, Broker};
use crate::group_coordinator::Caller;
use crate::observe::BrokerHandle;

/// The OffsetCommit version a reset speaks (v8: no retention time, no topic ids).
const RESET_COMMIT_VERSION: i16 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: String,
    pub state: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
    pub protocol_type: String,
    pub members: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub assignment: Vec<(String, Vec<i32>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetView {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// `None` when no replica of the partition is on this node.
    pub log_start_offset: Option<i64>,
    pub end_offset: Option<i64>,
    pub lag: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub group: String,
    pub state: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
    pub offsets: Vec<OffsetView>,
}

impl GroupView {
    /// Members, or a state other than Empty or Dead: offsets may not be reset.
    pub fn is_active(&self) -> bool {
        !self.members.is_empty() || !matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// A reset's target, as `gregor groups reset-offsets` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetStrategy {
    Earliest,
    Latest,
    /// Kept within the log.
    Offset(i64),
    /// The first offset at or after this time (the log end when there is none).
    Time(i64),
    /// The committed offset (or the log end) moved by N, kept within the log.
    Shift(i64),
}

/// One partition of a reset plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRow {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub new_offset: i64,
}

impl BrokerHandle {
    /// The groups of the shards loaded here (this node's share of `__consumer_offsets`).
    pub fn group_summaries(&self) -> Vec<GroupSummary> {
        let mut out = self.0.groups.each_loaded_shard(|shard| {
            shard
                .list_groups(&[], &[])
                .into_iter()
                .map(|g| GroupSummary {
                    members: shard.describe_group(g.group_id.as_str()).members.len(),
                    group: g.group_id.to_string(),
                    state: g.group_state.to_string(),
                    group_type: g.group_type.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                })
                .collect()
        });
        // Groups that only have committed offsets (no ListGroups entry) are listed too.
        for lag in self.group_lags() {
            if !out.iter().any(|g| g.group == lag.group) {
                out.push(GroupSummary {
                    group: lag.group,
                    state: "Empty".into(),
                    group_type: "classic".into(),
                    protocol_type: String::new(),
                    members: 0,
                });
            }
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// One group with its members and its committed offsets' lag.
    pub fn group(&self, group_id: &str) -> Result<GroupView, AdminError> {
        let broker = &self.0;
        let (listed, described, fetched) = broker
            .groups
            .read_shard(broker, group_id, |shard, _| {
                let listed = shard.list_groups(&[], &[]).into_iter().find(|g| g.group_id.as_str() == group_id);
                (listed, shard.describe_group(group_id), shard.fetch_offsets(group_id, None))
            })
            .map_err(|e| coordinator_error(broker, group_id, e))?;
        let fetched = fetched.map_err(|e| AdminError::of(e, format!("cannot read the offsets of '{group_id}'")))?;
        if listed.is_none() && fetched.is_empty() {
            return Err(AdminError::of(ResponseError::GroupIdNotFound, format!("group '{group_id}' does not exist")));
        }
        let members = described
            .members
            .iter()
            .map(|m| MemberView {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(ToString::to_string),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: decode_assignment(&m.member_assignment).unwrap_or_default(),
            })
            .collect();
        let mut offsets: Vec<OffsetView> = fetched
            .into_iter()
            .filter(|f| f.offset >= 0)
            .map(|f| {
                let marks = watermarks(broker, &f.topic, f.partition);
                OffsetView {
                    lag: marks.map(|(_, end)| (end - f.offset).max(0)),
                    log_start_offset: marks.map(|m| m.0),
                    end_offset: marks.map(|m| m.1),
                    topic: f.topic,
                    partition: f.partition,
                    committed_offset: f.offset,
                }
            })
            .collect();
        offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(GroupView {
            group: group_id.to_owned(),
            state: described.group_state.to_string(),
            group_type: listed.map_or_else(|| "classic".to_owned(), |g| g.group_type.to_string()),
            protocol_type: described.protocol_type.to_string(),
            protocol: described.protocol_data.to_string(),
            members,
            offsets,
        })
    }

    /// The plan of a reset: `targets` are `(topic, partitions)`, empty partitions meaning
    /// all of the topic's; no targets means every partition the group committed.
    pub fn reset_plan(
        &self,
        group_id: &str,
        targets: &[(String, Vec<i32>)],
        strategy: ResetStrategy,
    ) -> Result<Vec<ResetRow>, AdminError> {
        let group = self.group(group_id).or_else(|e| match e.name.as_str() {
            // A group that never committed may still be reset for named topics.
            "GROUP_ID_NOT_FOUND" if !targets.is_empty() => Ok(empty_group(group_id)),
            _ => Err(e),
        })?;
        if group.is_active() {
            return Err(AdminError::of(
                ResponseError::NonEmptyGroup,
                format!(
                    "cannot reset the offsets of group '{group_id}' while it is active (state {}, {} members): stop its consumers first",
                    group.state,
                    group.members.len()
                ),
            ));
        }
        let partitions = self.reset_partitions(&group, targets)?;
        let broker = &self.0;
        partitions
            .into_iter()
            .map(|(topic, partition)| {
                let current = group
                    .offsets
                    .iter()
                    .find(|o| o.topic == topic && o.partition == partition)
                    .map(|o| o.committed_offset);
                let new_offset = target_offset(broker, &topic, partition, current, strategy)?;
                Ok(ResetRow { topic, partition, current_offset: current, new_offset })
            })
            .collect()
    }

    fn reset_partitions(
        &self,
        group: &GroupView,
        targets: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, i32)>, AdminError> {
        let mut out: Vec<(String, i32)> = Vec::new();
        if targets.is_empty() {
            out.extend(group.offsets.iter().map(|o| (o.topic.clone(), o.partition)));
            if out.is_empty() {
                return Err(AdminError::of(
                    ResponseError::InvalidRequest,
                    format!("group '{}' has no committed offsets to reset: name the topics", group.group),
                ));
            }
        }
        let image = self.0.image();
        for (topic, partitions) in targets {
            let t = image.topic(topic).ok_or_else(|| super::unknown_topic(topic))?;
            if partitions.is_empty() {
                out.extend(t.partitions.keys().map(|p| (topic.clone(), *p)));
            }
            for p in partitions {
                if !t.partitions.contains_key(p) {
                    return Err(AdminError::of(
                        ResponseError::UnknownTopicOrPartition,
                        format!("topic '{topic}' has no partition {p}"),
                    ));
                }
                out.push((topic.clone(), *p));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Commits `plan` for the group (standalone commits: generation -1, no member), as
    /// `reset-offsets --execute` does.
    pub async fn commit_reset(&self, group_id: &str, plan: &[ResetRow], user: &str) -> Result<(), AdminError> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for row in plan {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(row.partition)
                .with_committed_offset(row.new_offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str("")));
            match topics.iter_mut().find(|t| t.name.as_str() == row.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(row.topic.clone())))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group_id.to_owned())))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::from_static_str(""))
            .with_topics(topics);
        let caller = Caller {
            api_version: RESET_COMMIT_VERSION,
            client_id: format!("gregor-console/{user}"),
            client_host: "/admin-api".into(),
        };
        let broker = &self.0;
        let answer = broker
            .groups
            .request(broker, group_id, caller, move |shard, meta, now| shard.offset_commit(meta, request, now))
            .await
            .map_err(|e| coordinator_error(broker, group_id, e))?;
        let GroupResponse::OffsetCommit(response) = answer else {
            return Err(AdminError::of(ResponseError::UnknownServerError, "the coordinator answered something else"));
        };
        let failed = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .find(|(_, p)| p.error_code != 0);
        match failed {
            None => Ok(()),
            Some((t, p)) => {
                let code = p.error_code;
                Err(AdminError {
                    code,
                    name: error_name(code),
                    message: format!(
                        "the commit of {}-{} failed: {}",
                        t.name.as_str(),
                        p.partition_index,
                        error_name(code)
                    ),
                })
            }
        }
    }

    /// Deletes an empty group and its committed offsets, as DeleteGroups does.
    pub fn delete_group(&self, group_id: &str) -> Result<(), AdminError> {
        let broker = &self.0;
        let code = broker
            .groups
            .read_shard(broker, group_id, |shard, index| {
                let (code, outputs) = shard.delete_group(group_id, now_ms());
                broker.groups.apply(broker, index, shard, outputs);
                code
            })
            .map_err(|e| coordinator_error(broker, group_id, e))?;
        match code {
            0 => Ok(()),
            code => Err(AdminError {
                code,
                name: error_name(code),
                message: format!("group '{group_id}': {}", error_name(code)),
            }),
        }
    }
}

fn empty_group(group_id: &str) -> GroupView {
    GroupView {
        group: group_id.to_owned(),
        state: "Dead".into(),
        group_type: "classic".into(),
        protocol_type: String::new(),
        protocol: String::new(),
        members: Vec::new(),
        offsets: Vec::new(),
    }
}

/// NOT_COORDINATOR names the node to ask instead.
fn coordinator_error(broker: &Broker, group_id: &str, e: ResponseError) -> AdminError {
    let message = match e {
        ResponseError::NotCoordinator => {
            format!("group '{group_id}' is coordinated by another node than node {}: ask its console", broker.node_id)
        }
        e => format!("group '{group_id}': {}", error_name(e.code())),
    };
    AdminError::of(e, message)
}

/// `(log start offset, high watermark)` of a partition with a replica here.
fn watermarks(broker: &Broker, topic: &str, partition: i32) -> Option<(i64, i64)> {
    let hosted = broker.replicas.get(&TopicPartition::new(topic, partition))?;
    let (start, hw, _) = broker.replicas.offsets(&hosted);
    Some((start, hw))
}

fn target_offset(
    broker: &Broker,
    topic: &str,
    partition: i32,
    current: Option<i64>,
    strategy: ResetStrategy,
) -> Result<i64, AdminError> {
    let tp = TopicPartition::new(topic, partition);
    let hosted = broker.replicas.get(&tp).ok_or_else(|| {
        AdminError::of(ResponseError::NotLeaderOrFollower, format!("no replica of {tp} is on node {}", broker.node_id))
    })?;
    let (start, end, _) = broker.replicas.offsets(&hosted);
    Ok(match strategy {
        ResetStrategy::Earliest => start,
        ResetStrategy::Latest => end,
        ResetStrategy::Offset(n) => n.clamp(start, end),
        ResetStrategy::Time(ms) => {
            broker.replicas.offset_for_timestamp(&hosted, ms)?.map_or(end, |t| t.offset).clamp(start, end)
        }
        ResetStrategy::Shift(n) => current.unwrap_or(end).saturating_add(n).clamp(start, end),
    })
}
