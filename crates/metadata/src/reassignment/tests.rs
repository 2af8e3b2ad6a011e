use super::*;
use crate::record::{BrokerRegistration, MetadataRecord};
use crate::replication_control::{alter_partition, AlterPartition, IsrMember};
use crate::Uuid;

const ID: Uuid = Uuid::from_u128(9);

/// Brokers 1..=4 (epochs 101..=104) and topic `t` with one partition on [1, 2, 3].
fn image() -> MetadataImage {
    let mut image = MetadataImage::new();
    for id in 1..=4 {
        let b = BrokerRegistration { node_id: id, epoch: 100 + i64::from(id), ..Default::default() };
        image.replay(i64::from(id), &MetadataRecord::RegisterBroker(b));
    }
    image.replay(10, &MetadataRecord::Topic { name: "t".into(), topic_id: ID });
    let p = PartitionRegistration {
        topic_id: ID,
        partition: 0,
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 5,
        partition_epoch: 9,
        ..Default::default()
    };
    image.replay(11, &MetadataRecord::Partition(p));
    image
}

fn partition(image: &MetadataImage) -> PartitionRegistration {
    image.topic("t").unwrap().partitions[&0].clone()
}

fn set(image: &mut MetadataImage, p: PartitionRegistration) -> PartitionRegistration {
    image.replay(image.last_offset + 1, &MetadataRecord::Partition(p));
    partition(image)
}

/// The leader's AlterPartition that sets the ISR to `isr`.
fn isr_change(image: &MetadataImage, isr: &[i32]) -> Result<PartitionRegistration, MetadataError> {
    let p = partition(image);
    let new_isr = isr.iter().map(|&b| IsrMember { broker_id: b, broker_epoch: 100 + i64::from(b) }).collect();
    let request = AlterPartition {
        topic_id: ID,
        partition: 0,
        leader_id: p.leader,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr,
    };
    alter_partition(image, &request)
}

#[test]
fn given_a_new_replica_should_add_it_before_removing_the_old_one() {
    let mut image = image();
    let started = alter(&image, ("t", 0), Some(&[4, 2, 3])).unwrap().unwrap();
    let next = started;
    let p = set(&mut image, next);
    assert_eq!(p.replicas, vec![4, 2, 3, 1], "target first, then the leaving replica");
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![4], vec![1]));
    assert_eq!((p.isr.clone(), p.leader, p.leader_epoch, p.partition_epoch), (vec![1, 2, 3], 1, 5, 10));
    assert_eq!(ongoing(&image).len(), 1);

    // Broker 4 caught up: the ISR change that brings it in completes the move, and the
    // leader, no longer a replica, hands over to the first in-sync target replica.
    let next = isr_change(&image, &[1, 2, 3, 4]).unwrap();
    let done = set(&mut image, next);
    assert_eq!(done.replicas, vec![4, 2, 3]);
    assert_eq!(done.isr, vec![2, 3, 4]);
    assert!(!done.is_reassigning() && ongoing(&image).is_empty());
    assert_eq!((done.leader, done.leader_epoch), (4, 6));
}

#[test]
fn given_a_larger_target_should_raise_the_replication_factor_and_keep_the_leader() {
    let mut image = image();
    let next = alter(&image, ("t", 0), Some(&[1, 2, 3, 4])).unwrap().unwrap();
    let p = set(&mut image, next);
    assert_eq!((p.adding_replicas.clone(), p.removing_replicas.clone()), (vec![4], vec![]));
    let next = isr_change(&image, &[1, 2, 3]).unwrap();
    let p = set(&mut image, next);
    assert!(p.is_reassigning(), "an ISR change without the new replica does not complete it");
    let next = isr_change(&image, &[1, 2, 3, 4]).unwrap();
    let done = set(&mut image, next);
    assert_eq!((done.replicas.clone(), done.leader, done.leader_epoch), (vec![1, 2, 3, 4], 1, 5));
    assert!(!done.is_reassigning());
}

#[test]
fn given_a_smaller_target_in_sync_should_complete_at_once() {
    let image = image();
    let p = alter(&image, ("t", 0), Some(&[2, 3])).unwrap().unwrap();
    assert_eq!((p.replicas, p.isr, p.leader, p.leader_epoch), (vec![2, 3], vec![2, 3], 2, 6));
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert_eq!(alter(&image, ("t", 0), Some(&[1, 2, 3])).unwrap(), None, "the same replicas change nothing");
}

#[test]
fn given_a_reassignment_when_cancelled_should_return_to_the_original_replicas() {
    let mut image = image();
    let next = alter(&image, ("t", 0), Some(&[4, 2, 3])).unwrap().unwrap();
    let _ = set(&mut image, next);
    let next = alter(&image, ("t", 0), None).unwrap().unwrap();
    let reverted = set(&mut image, next);
    // Kafka's revert keeps the current order without the added replicas (the rollback
    // plan kafka-reassign-partitions.sh prints restores the exact order).
    assert_eq!((reverted.replicas.clone(), reverted.isr.clone(), reverted.leader), (vec![2, 3, 1], vec![1, 2, 3], 1));
    assert!(!reverted.is_reassigning());
    assert!(matches!(alter(&image, ("t", 0), None), Err(MetadataError::NoReassignmentInProgress)));
}

#[test]
fn given_bad_targets_should_refuse_them() {
    let image = image();
    for bad in [&[][..], &[1, 1][..], &[1, 9][..]] {
        assert!(
            matches!(alter(&image, ("t", 0), Some(bad)), Err(MetadataError::InvalidReplicaAssignment(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(alter(&image, ("t", 7), Some(&[1])), Err(MetadataError::UnknownPartition { .. })));
    assert!(matches!(alter(&image, ("nope", 0), Some(&[1])), Err(MetadataError::UnknownPartition { .. })));
}

#[test]
fn given_a_reassignment_should_refuse_an_isr_member_that_is_not_a_replica() {
    let mut image = image();
    let next = alter(&image, ("t", 0), Some(&[1, 2, 3, 4])).unwrap().unwrap();
    let _ = set(&mut image, next);
    let next = isr_change(&image, &[1, 2, 3, 4]).unwrap();
    let p = set(&mut image, next);
    assert!(!p.is_reassigning());
    let next = alter(&image, ("t", 0), Some(&[1, 2, 3])).unwrap().unwrap();
    let _ = set(&mut image, next);
    assert!(isr_change(&image, &[1, 2, 3, 4]).is_err(), "broker 4 left the replicas");
}
