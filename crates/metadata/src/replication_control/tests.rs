use super::*;
use crate::record::BrokerRegistration;

const ID: Uuid = Uuid::from_u128(7);

/// Brokers 1..=3 (epochs 101..=103) and topic `t` with one partition on [1, 2, 3].
fn image(isr: &[i32], leader: i32) -> MetadataImage {
    let mut image = MetadataImage::new();
    for id in 1..=3 {
        let b = BrokerRegistration { node_id: id, epoch: 100 + i64::from(id), ..Default::default() };
        image.replay(i64::from(id), &MetadataRecord::RegisterBroker(b));
    }
    image.replay(10, &MetadataRecord::Topic { name: "t".into(), topic_id: ID });
    image.replay(
        11,
        &MetadataRecord::Partition(PartitionRegistration {
            topic_id: ID,
            partition: 0,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            leader,
            leader_epoch: 5,
            partition_epoch: 9,
            ..Default::default()
        }),
    );
    image
}

fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) -> PartitionRegistration {
    for r in records {
        image.replay(image.last_offset + 1, r);
    }
    partition(image)
}

/// Applies what `broker_id` changing as `how` decides, and returns the partition.
fn change(
    image: &mut MetadataImage,
    broker_id: i32,
    how: BrokerChange,
    policy: UncleanPolicy<'_>,
) -> PartitionRegistration {
    let records = on_broker_change(image, broker_id, how, policy);
    apply(image, &records)
}

fn partition(image: &MetadataImage) -> PartitionRegistration {
    image.topic("t").unwrap().partitions[&0].clone()
}

fn fence(image: &mut MetadataImage, id: i32) {
    let epoch = image.brokers[&id].epoch;
    image.replay(image.last_offset + 1, &MetadataRecord::BrokerRegistrationChange { node_id: id, epoch, fenced: true });
}

const CLEAN: &dyn Fn(&TopicImage) -> bool = &|_| false;

#[test]
fn given_fenced_leader_should_elect_next_in_sync_replica_with_new_epoch() {
    let mut image = image(&[1, 2, 3], 1);
    let p = change(&mut image, 1, BrokerChange::Fenced, CLEAN);
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch, p.partition_epoch), (2, vec![2, 3], 6, 10));
}

#[test]
fn given_fenced_follower_should_shrink_isr_and_keep_leader_epoch() {
    let mut image = image(&[1, 2, 3], 1);
    let p = change(&mut image, 3, BrokerChange::Fenced, CLEAN);
    assert_eq!((p.leader, p.isr, p.leader_epoch, p.partition_epoch), (1, vec![1, 2], 5, 10));
    // A follower outside the ISR changes nothing.
    let _ = change(&mut image, 3, BrokerChange::Fenced, CLEAN);
    assert!(on_broker_change(&image, 3, BrokerChange::Fenced, CLEAN).is_empty());
}

#[test]
fn given_last_in_sync_replica_fenced_should_go_offline_until_it_returns() {
    let mut image = image(&[1], 1);
    let p = change(&mut image, 1, BrokerChange::Fenced, CLEAN);
    // The others are alive but may miss acknowledged records: no election.
    // Going offline is a leader change too (epoch 6), coming back another (7).
    assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (NO_LEADER, vec![1], 6));
    fence(&mut image, 1);
    assert!(on_broker_change(&image, 2, BrokerChange::Unfenced, CLEAN).is_empty());
    let p = change(&mut image, 1, BrokerChange::Unfenced, CLEAN);
    assert_eq!((p.leader, p.isr, p.leader_epoch), (1, vec![1], 7));
}

#[test]
fn given_unclean_election_enabled_should_elect_a_live_out_of_sync_replica() {
    let mut image = image(&[1], 1);
    let unclean: &dyn Fn(&TopicImage) -> bool = &|_| true;
    let p = change(&mut image, 1, BrokerChange::Fenced, unclean);
    assert_eq!((p.leader, p.isr), (2, vec![2]));
}

#[test]
fn given_restarted_follower_should_leave_isr_until_it_catches_up() {
    let mut image = image(&[1, 2, 3], 1);
    let p = change(&mut image, 2, BrokerChange::Restarted, CLEAN);
    assert_eq!((p.leader, p.isr, p.leader_epoch), (1, vec![1, 3], 5));
}

#[test]
fn given_restarted_sole_leader_should_lead_again_in_a_new_epoch() {
    let mut image = image(&[1], 1);
    let p = change(&mut image, 1, BrokerChange::Restarted, CLEAN);
    assert_eq!((p.leader, p.isr, p.leader_epoch), (1, vec![1], 6));
}

fn request(isr: &[(i32, i64)]) -> AlterPartition {
    AlterPartition {
        topic_id: ID,
        partition: 0,
        leader_id: 1,
        leader_epoch: 5,
        partition_epoch: 9,
        new_isr: isr.iter().map(|&(broker_id, broker_epoch)| IsrMember { broker_id, broker_epoch }).collect(),
    }
}

#[test]
fn given_current_epochs_should_accept_isr_change_and_bump_partition_epoch() {
    let image = image(&[1, 2], 1);
    let p = alter_partition(&image, &request(&[(1, 101), (2, 102), (3, 103)])).unwrap();
    assert_eq!((p.isr, p.partition_epoch, p.leader_epoch), (vec![1, 2, 3], 10, 5));
}

#[test]
fn given_stale_epochs_should_refuse_as_kafka_does() {
    let image = image(&[1, 2], 1);
    let stale_leader = AlterPartition { leader_epoch: 4, ..request(&[(1, 101)]) };
    assert!(matches!(alter_partition(&image, &stale_leader), Err(MetadataError::FencedLeaderEpoch { current: 5 })));
    let stale_version = AlterPartition { partition_epoch: 8, ..request(&[(1, 101)]) };
    assert!(matches!(alter_partition(&image, &stale_version), Err(MetadataError::InvalidUpdateVersion { current: 9 })));
    let not_leader = AlterPartition { leader_id: 2, ..request(&[(2, 102)]) };
    assert!(matches!(alter_partition(&image, &not_leader), Err(MetadataError::NotLeader { leader: 1 })));
    assert!(matches!(alter_partition(&image, &request(&[(2, 102)])), Err(MetadataError::InvalidIsr(_))));
}

#[test]
fn given_stale_or_fenced_broker_should_not_join_isr() {
    // KIP-903: the fetch that proved broker 3 caught up came from an older incarnation.
    let mut image = image(&[1, 2], 1);
    let stale = alter_partition(&image, &request(&[(1, 101), (2, 102), (3, 99)]));
    assert!(matches!(stale, Err(MetadataError::IneligibleReplica(_))));
    fence(&mut image, 3);
    let fenced = alter_partition(&image, &request(&[(1, 101), (2, 102), (3, 103)]));
    assert!(matches!(fenced, Err(MetadataError::IneligibleReplica(_))));
    // Members already in the ISR are not re-checked: a shrink always goes through.
    assert!(alter_partition(&image, &request(&[(1, 101)])).is_ok());
}

#[test]
fn given_preferred_replica_in_sync_should_move_leadership_back() {
    let mut image = image(&[1, 2, 3], 2);
    let p = elect(&image, ("t", 0), ElectionType::Preferred).unwrap();
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 6, 10));
    assert_eq!(imbalanced(&image, 10), vec![("t".to_owned(), 0)]);
    image.replay(image.last_offset + 1, &MetadataRecord::Partition(p));
    assert_eq!(elect(&image, ("t", 0), ElectionType::Preferred), Err(NoElection::NotNeeded));
    assert!(imbalanced(&image, 10).is_empty());
}

#[test]
fn given_preferred_replica_out_of_sync_should_not_elect_it() {
    let image = image(&[2, 3], 2);
    assert_eq!(elect(&image, ("t", 0), ElectionType::Preferred), Err(NoElection::PreferredNotAvailable));
    assert!(imbalanced(&image, 10).is_empty());
    assert_eq!(elect(&image, ("t", 9), ElectionType::Preferred), Err(NoElection::UnknownPartition));
}

#[test]
fn given_offline_partition_should_elect_uncleanly_only_when_asked() {
    let mut image = image(&[1], NO_LEADER);
    fence(&mut image, 1);
    assert_eq!(elect(&image, ("t", 0), ElectionType::Preferred), Err(NoElection::PreferredNotAvailable));
    let p = elect(&image, ("t", 0), ElectionType::Unclean).unwrap();
    assert_eq!((p.leader, p.isr), (2, vec![2]));
}
