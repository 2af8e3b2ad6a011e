//! ConsumerGroupDescribe, and consumer groups as ListGroups and DescribeGroups see them.

use gregor_protocol::kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use gregor_protocol::kafka_protocol::messages::{describe_groups_response, GroupId, TopicName};
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use super::consumer_group::{ConsumerGroup, ConsumerMember};
use super::heartbeat::default_assignor;
use super::Partitions;
use crate::shard::str_bytes;
use crate::{GroupCoordinatorShard, TopicsView};

/// `member_type` of ConsumerGroupDescribe v1: a member of the consumer protocol.
const CONSUMER_MEMBER_TYPE: i8 = 1;

impl GroupCoordinatorShard {
    /// ConsumerGroupDescribe for one group, encodable at `api_version` (0-1). Topic names
    /// come from `topics`; partitions of topics it does not know are left out, as Kafka
    /// leaves out topics missing from its metadata image. `authorized_operations` is the
    /// broker's to fill.
    pub fn consumer_group_describe(&self, group_id: &str, topics: &TopicsView, api_version: i16) -> DescribedGroup {
        let described = DescribedGroup::default().with_group_id(GroupId(str_bytes(group_id)));
        let Some(group) = self.consumer_groups.get(group_id) else {
            let message = if self.groups.contains_key(group_id) {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return described
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(str_bytes(&message)))
                .with_group_state(StrBytes::from_static_str("Dead"));
        };
        let names = |p: &Partitions| describe_assignment(p, topics);
        let members = group
            .members
            .values()
            .map(|m| {
                describe_member(
                    m,
                    names(&m.assigned),
                    names(group.targets.get(&m.member_id).unwrap_or(&Partitions::new())),
                    api_version,
                )
            })
            .collect();
        described
            .with_group_state(StrBytes::from_static_str(group.state().name()))
            .with_group_epoch(group.group_epoch)
            .with_assignment_epoch(group.assignment_epoch)
            .with_assignor_name(str_bytes(&group.preferred_assignor(default_assignor(&self.config.consumer))))
            .with_members(members)
    }

    /// True if `group_id` is a KIP-848 consumer group.
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.consumer_groups.contains_key(group_id)
    }

    /// Consumer groups for ListGroups (type "consumer", protocol type "consumer").
    pub(crate) fn listed_consumer_groups(&self, wanted_state: impl Fn(&str) -> bool) -> Vec<ListedGroup> {
        self.consumer_groups
            .values()
            .filter(|g| wanted_state(g.state().name()))
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(&g.group_id)))
                    .with_protocol_type(StrBytes::from_static_str("consumer"))
                    .with_group_state(StrBytes::from_static_str(g.state().name()))
                    .with_group_type(StrBytes::from_static_str("consumer"))
            })
            .collect()
    }
}

/// DescribeGroups (the classic API) of a consumer group: Kafka 4 answers "Dead", with
/// GROUP_ID_NOT_FOUND and "Group x is not a classic group." from v6 on. The version is the
/// broker's, so the shard gives the v0-5 answer (the broker's unknown-group path, through
/// [`GroupCoordinatorShard::has_group`] being false, gives the v6 one).
pub(crate) fn classic_view(group: &ConsumerGroup) -> describe_groups_response::DescribedGroup {
    describe_groups_response::DescribedGroup::default()
        .with_group_id(GroupId(str_bytes(&group.group_id)))
        .with_group_state(StrBytes::from_static_str("Dead"))
}

fn describe_member(member: &ConsumerMember, assignment: Assignment, target: Assignment, version: i16) -> Member {
    let described = Member::default()
        .with_member_id(str_bytes(&member.member_id))
        .with_instance_id(member.instance_id.as_deref().map(str_bytes))
        .with_rack_id(member.rack_id.as_deref().map(str_bytes))
        .with_member_epoch(member.member_epoch)
        .with_client_id(str_bytes(&member.client_id))
        .with_client_host(str_bytes(&member.client_host))
        .with_subscribed_topic_names(member.subscribed_topic_names.iter().map(|t| TopicName(str_bytes(t))).collect())
        .with_subscribed_topic_regex(member.subscribed_topic_regex.as_deref().map(str_bytes))
        .with_assignment(assignment)
        .with_target_assignment(target);
    // v0 has no member_type and refuses to encode anything but its default (-1).
    if version >= 1 {
        described.with_member_type(CONSUMER_MEMBER_TYPE)
    } else {
        described
    }
}

fn describe_assignment(partitions: &Partitions, topics: &TopicsView) -> Assignment {
    let topic_partitions = partitions
        .iter()
        .filter_map(|(id, set)| {
            let name = topics.iter().find(|(_, (topic_id, _))| topic_id == id).map(|(name, _)| name)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(str_bytes(name)))
                    .with_partitions(set.iter().copied().collect()),
            )
        })
        .collect();
    Assignment::default().with_topic_partitions(topic_partitions)
}
