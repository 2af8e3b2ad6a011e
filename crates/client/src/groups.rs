//! Consumer group administration through the group coordinator: list, describe (with
//! the consumer protocol's assignments decoded), committed offsets, commit, delete.

use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use gregor_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use gregor_protocol::kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, TopicName,
};
use gregor_protocol::kafka_protocol::protocol::StrBytes;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::{check, ClientError, Result};

/// OffsetFetch v8+ batches groups in another layout; v1-7 ask for one group.
const OFFSET_FETCH_MAX_VERSION: i16 = 7;
const COORDINATOR_RETRIES: u32 = 20;

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    /// Empty when the broker is too old to report it.
    pub state: String,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Topic and partitions, decoded from the consumer protocol's assignment bytes.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

impl GroupDescription {
    /// True when the group has members or is rebalancing (offsets must not be reset).
    pub fn is_active(&self) -> bool {
        !matches!(self.state.as_str(), "Empty" | "Dead" | "") || !self.members.is_empty()
    }
}

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: Option<String>,
}

/// Decodes a consumer protocol assignment (version, [(topic, [partition])], user data).
/// Empty bytes (a member not yet synced) decode to no partitions.
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, Vec<i32>)>> {
    gregor_protocol::consumer_protocol::decode_assignment(bytes)
        .map_err(|e| ClientError::codec("decode a member assignment", e))
}

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn retriable_coordinator_error(code: i16) -> bool {
    matches!(code, 14..=16)
}

impl Client {
    /// The coordinator of `group`, connected. Retries while the coordinator loads.
    pub async fn coordinator(&mut self, group: &str) -> Result<&mut Connection> {
        let mut attempt = 0;
        loop {
            let (code, message, node) = self.find_coordinator(group).await?;
            if code == 0 {
                let (id, host, port) = node;
                return self.node_at(id, &host, port).await;
            }
            attempt += 1;
            if !retriable_coordinator_error(code) || attempt >= COORDINATOR_RETRIES {
                check(code, message.as_deref(), || format!("cannot find the coordinator of group '{group}'"))?;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn find_coordinator(&mut self, group: &str) -> Result<(i16, Option<String>, (i32, String, i32))> {
        let version = self.any().version_for::<FindCoordinatorRequest>(None)?;
        let request = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s(group)])
        } else {
            FindCoordinatorRequest::default().with_key(s(group))
        };
        let r = self.any().send_version(&request, version).await?;
        if version >= 4 {
            let c =
                r.coordinators.first().ok_or_else(|| ClientError::Other("FindCoordinator answered no key".into()))?;
            let message = c.error_message.as_ref().map(ToString::to_string);
            return Ok((c.error_code, message, (c.node_id.0, c.host.to_string(), c.port)));
        }
        let message = r.error_message.as_ref().map(ToString::to_string);
        Ok((r.error_code, message, (r.node_id.0, r.host.to_string(), r.port)))
    }

    /// Every group of every broker, sorted by id.
    pub async fn list_groups(&mut self) -> Result<Vec<GroupListing>> {
        let brokers: Vec<i32> = self.metadata(Some(&[])).await?.brokers.iter().map(|b| b.node_id).collect();
        let mut out = Vec::new();
        for id in brokers {
            let response = self.node(id).await?.send(&ListGroupsRequest::default(), None).await?;
            check(response.error_code, None, || format!("broker {id} cannot list groups"))?;
            out.extend(response.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// State, protocol and members of `group`. An unknown group reads as `Dead`.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]);
        let response = self.coordinator(group).await?.send(&request, None).await?;
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Other(format!("DescribeGroups did not answer for group '{group}'")))?;
        const GROUP_ID_NOT_FOUND: i16 = 69;
        if g.error_code == GROUP_ID_NOT_FOUND {
            return Ok(GroupDescription {
                group_id: group.to_owned(),
                state: "Dead".into(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        }
        let message = g.error_message.as_ref().map(ToString::to_string);
        check(g.error_code, message.as_deref(), || format!("cannot describe group '{group}'"))?;
        let mut members = Vec::new();
        for m in g.members {
            members.push(GroupMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment: decode_assignment(&m.member_assignment).unwrap_or_default(),
            });
        }
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
        })
    }

    /// Committed offsets of `group` for `topics` (`None`: every topic it committed).
    /// Partitions without a commit are left out.
    pub async fn committed_offsets(
        &mut self,
        group: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<CommittedOffset>> {
        let topics = topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default().with_name(TopicName(s(t))).with_partition_indexes(ps.clone())
                })
                .collect()
        });
        let request = OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(topics);
        let response = self.coordinator(group).await?.send(&request, Some(OFFSET_FETCH_MAX_VERSION)).await?;
        check(response.error_code, None, || format!("cannot read the offsets of group '{group}'"))?;
        let mut out = Vec::new();
        for t in &response.topics {
            for p in &t.partitions {
                check(p.error_code, None, || {
                    format!("cannot read the offset of group '{group}' on {}-{}", t.name.0, p.partition_index)
                })?;
                if p.committed_offset >= 0 {
                    out.push(CommittedOffset {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        metadata: p.metadata.as_ref().map(ToString::to_string),
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// Commits `(topic, partition, offset)` for `group` as a standalone consumer
    /// (generation -1, no member id): accepted while the group has no active members.
    pub async fn commit_offsets(&mut self, group: &str, offsets: &[(String, i32, i64)]) -> Result<()> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p =
                OffsetCommitRequestPartition::default().with_partition_index(*partition).with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics
                    .push(OffsetCommitRequestTopic::default().with_name(TopicName(s(topic))).with_partitions(vec![p])),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(StrBytes::default())
            .with_topics(topics);
        let response = self.coordinator(group).await?.send(&request, None).await?;
        for t in &response.topics {
            for p in &t.partitions {
                check(p.error_code, None, || {
                    format!("cannot commit group '{group}' offsets on {}-{}", t.name.0, p.partition_index)
                })?;
            }
        }
        Ok(())
    }

    /// Deletes groups (each must be empty); one result per group, in order.
    pub async fn delete_groups(&mut self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for group in groups {
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
            let response = self.coordinator(group).await?.send(&request, None).await?;
            let result = response
                .results
                .iter()
                .find(|r| r.group_id.0.as_str() == group)
                .map_or(Ok(()), |r| check(r.error_code, None, || format!("cannot delete group '{group}'")));
            out.push((group.clone(), result));
        }
        Ok(out)
    }

    /// Deletes the committed offsets of `group` on `topic`'s `partitions`.
    pub async fn delete_offsets(&mut self, group: &str, topic: &str, partitions: &[i32]) -> Result<()> {
        let request = OffsetDeleteRequest::default().with_group_id(GroupId(s(group))).with_topics(vec![
            OffsetDeleteRequestTopic::default().with_name(TopicName(s(topic))).with_partitions(
                partitions.iter().map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p)).collect(),
            ),
        ]);
        let response = self.coordinator(group).await?.send(&request, None).await?;
        check(response.error_code, None, || format!("cannot delete the offsets of group '{group}'"))?;
        for t in &response.topics {
            for p in &t.partitions {
                check(p.error_code, None, || {
                    format!("cannot delete the offset of group '{group}' on {topic}-{}", p.partition_index)
                })?;
            }
        }
        Ok(())
    }
}
