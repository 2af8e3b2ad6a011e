//! The controller's decisions, as pure functions of the image: each validates a request
//! and returns the records that carry it out (Kafka's `ReplicationControlManager`).
//! Nothing here writes; the caller appends the records and replays them.

use uuid::Uuid;

use crate::image::MetadataImage;
use crate::placement::{self, Candidate, Seed};
use crate::record::{ConfigResource, MetadataRecord, PartitionRegistration};
use crate::MetadataError;

/// Kafka's limit: a partition directory `<topic>-<partition>` must fit a file name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// Producer ids are handed out in blocks, as Kafka's controller does, so that one
/// metadata record serves many InitProducerId requests.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// Kafka's `Topic.validate`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name == "." || name == ".." {
        "'.' and '..' are not allowed"
    } else if name.len() > MAX_TOPIC_NAME_LEN {
        "the name is longer than 249 characters"
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        "only ASCII letters, digits, '.', '_' and '-' are allowed"
    } else {
        return Ok(());
    };
    Err(MetadataError::InvalidTopicName { name: name.to_owned(), reason })
}

/// A CreateTopics entry after defaults were resolved.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub num_partitions: i32,
    pub replication_factor: i32,
    /// Explicit replica lists per partition; empty to let the controller place them.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, String)>,
}

/// Records that create a topic, or why it cannot be created.
pub fn create_topic(image: &MetadataImage, topic: &NewTopic) -> Result<Vec<MetadataRecord>, MetadataError> {
    validate_topic_name(&topic.name)?;
    if image.topic(&topic.name).is_some() {
        return Err(MetadataError::TopicExists(topic.name.clone()));
    }
    // Kafka refuses names that differ only by '.' vs '_': they share metric names.
    let unified = topic.name.replace('.', "_");
    if image.topics().any(|t| t.name.replace('.', "_") == unified) {
        return Err(MetadataError::InvalidTopicName {
            name: topic.name.clone(),
            reason: "it collides with an existing topic that differs only by '.' and '_'",
        });
    }
    let topic_id = Uuid::new_v4();
    let placements = if topic.assignments.is_empty() {
        place_replicas(image, 0, topic.num_partitions, topic.replication_factor, seed_of(topic_id, 0))?
    } else {
        let mut numbers: Vec<i32> = topic.assignments.iter().map(|(p, _)| *p).collect();
        numbers.sort_unstable();
        if numbers.iter().zip(0..).any(|(p, expected)| *p != expected) {
            return Err(MetadataError::InvalidReplicaAssignment(
                "partitions of a manual assignment must be numbered 0, 1, 2, ... without gaps".into(),
            ));
        }
        validate_assignments(image, &topic.assignments)?
    };
    let mut records = vec![MetadataRecord::Topic { name: topic.name.clone(), topic_id }];
    records.extend(topic.configs.iter().map(|(name, value)| MetadataRecord::Config {
        resource: ConfigResource::Topic(topic.name.clone()),
        name: name.clone(),
        value: Some(value.clone()),
    }));
    records.extend(placements.into_iter().map(|(partition, replicas)| new_partition(topic_id, partition, replicas)));
    Ok(records)
}

/// Records that grow a topic to `total` partitions.
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    total: i32,
    assignments: &[Vec<i32>],
) -> Result<Vec<MetadataRecord>, MetadataError> {
    let topic = image.topic(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
    let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    if total <= current {
        return Err(MetadataError::InvalidPartitions(total));
    }
    let replication_factor = topic.partitions.values().next().map_or(1, |p| p.replicas.len() as i32);
    let placements = if assignments.is_empty() {
        place_replicas(image, current, total - current, replication_factor, seed_of(topic.topic_id, current))?
    } else {
        let numbered: Vec<_> = (current..).zip(assignments.iter().cloned()).collect();
        if numbered.len() != (total - current) as usize {
            return Err(MetadataError::InvalidReplicaAssignment(format!(
                "{} assignments given for {} new partitions",
                numbered.len(),
                total - current
            )));
        }
        validate_assignments(image, &numbered)?
    };
    Ok(placements.into_iter().map(|(p, replicas)| new_partition(topic.topic_id, p, replicas)).collect())
}

/// The record that deletes a topic.
pub fn delete_topic(image: &MetadataImage, name: &str) -> Result<Vec<MetadataRecord>, MetadataError> {
    let topic = image.topic(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
    Ok(vec![MetadataRecord::RemoveTopic { topic_id: topic.topic_id }])
}

/// The record that reserves the next block of producer ids for `broker_id`, and the
/// first id of that block.
pub fn allocate_producer_ids(image: &MetadataImage, broker_id: i32) -> (i64, MetadataRecord) {
    let start = image.next_producer_id;
    (start, MetadataRecord::ProducerIds { broker_id, next_producer_id: start + PRODUCER_ID_BLOCK_SIZE })
}

fn new_partition(topic_id: Uuid, partition: i32, replicas: Vec<i32>) -> MetadataRecord {
    MetadataRecord::Partition(PartitionRegistration {
        topic_id,
        partition,
        leader: replicas[0],
        isr: replicas.clone(),
        replicas,
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    })
}

/// Placement over the live (registered, unfenced) brokers, as Kafka's
/// `assignReplicasToBrokers` (see `placement`), starting where `seed` says.
fn place_replicas(
    image: &MetadataImage,
    first_partition: i32,
    count: i32,
    replication_factor: i32,
    seed: Seed,
) -> Result<Vec<(i32, Vec<i32>)>, MetadataError> {
    if count < 1 {
        return Err(MetadataError::InvalidPartitions(count));
    }
    let brokers: Vec<Candidate> =
        image.live_brokers().map(|b| Candidate { node_id: b.node_id, rack: b.rack.clone() }).collect();
    if replication_factor < 1 || replication_factor as usize > brokers.len() {
        return Err(MetadataError::InvalidReplicationFactor {
            requested: replication_factor,
            available: brokers.len(),
        });
    }
    Ok(placement::assign(&brokers, first_partition, count, replication_factor as usize, seed))
}

/// The random start of a topic's placement, from its random id: drawn once, on the
/// controller, and carried by the records like every other decision.
fn seed_of(topic_id: Uuid, salt: i32) -> Seed {
    let (high, low) = topic_id.as_u64_pair();
    let salt = u64::from(salt.unsigned_abs());
    Seed { start: ((high ^ salt) % 1_000_003) as usize, shift: ((low ^ salt) % 1_000_003) as usize }
}

fn validate_assignments(
    image: &MetadataImage,
    assignments: &[(i32, Vec<i32>)],
) -> Result<Vec<(i32, Vec<i32>)>, MetadataError> {
    let bad = |why: String| Err(MetadataError::InvalidReplicaAssignment(why));
    let first_len = assignments.first().map_or(0, |(_, r)| r.len());
    for (partition, replicas) in assignments {
        if replicas.is_empty() || replicas.len() != first_len {
            return bad(format!("partition {partition} must list {first_len} replica(s)"));
        }
        if let Some(b) = replicas.iter().find(|b| !image.brokers.contains_key(b)) {
            return bad(format!("broker {b} of partition {partition} is not registered"));
        }
        let mut sorted = replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != replicas.len() {
            return bad(format!("partition {partition} lists a broker twice"));
        }
    }
    Ok(assignments.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::BrokerRegistration;

    fn image_with_brokers(n: i32) -> MetadataImage {
        let mut image = MetadataImage::new();
        for id in 0..n {
            let b = BrokerRegistration { node_id: id, host: "localhost".into(), port: 9092, ..Default::default() };
            image.replay(i64::from(id), &MetadataRecord::RegisterBroker(b));
        }
        image
    }

    fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
        for r in records {
            image.replay(image.last_offset + 1, r);
        }
    }

    fn new_topic(name: &str, partitions: i32, rf: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            assignments: vec![],
            configs: vec![],
        }
    }

    #[test]
    fn given_names_should_follow_kafka_rules() {
        assert!(validate_topic_name("orders.created_v-1").is_ok());
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn given_three_brokers_should_spread_leaders() {
        let mut image = image_with_brokers(3);
        let records = create_topic(&image, &new_topic("t", 3, 2)).unwrap();
        apply(&mut image, &records);
        let mut leaders: Vec<i32> = image.topic("t").unwrap().partitions.values().map(|p| p.leader).collect();
        leaders.sort_unstable();
        assert_eq!(leaders, vec![0, 1, 2]);
        assert!(matches!(create_topic(&image, &new_topic("t", 1, 1)), Err(MetadataError::TopicExists(_))));
    }

    #[test]
    fn given_dot_and_underscore_variants_should_collide() {
        let mut image = image_with_brokers(1);
        let records = create_topic(&image, &new_topic("orders.created", 1, 1)).unwrap();
        apply(&mut image, &records);
        assert!(matches!(
            create_topic(&image, &new_topic("orders_created", 1, 1)),
            Err(MetadataError::InvalidTopicName { .. })
        ));
        assert!(create_topic(&image, &new_topic("orders-created", 1, 1)).is_ok());
    }

    #[test]
    fn given_too_high_replication_should_refuse() {
        let image = image_with_brokers(1);
        let err = create_topic(&image, &new_topic("t", 1, 3)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidReplicationFactor { requested: 3, available: 1 }));
    }

    #[test]
    fn given_topic_when_partitions_added_should_number_them_after_existing() {
        let mut image = image_with_brokers(1);
        let records = create_topic(&image, &new_topic("t", 2, 1)).unwrap();
        apply(&mut image, &records);
        let records = create_partitions(&image, "t", 5, &[]).unwrap();
        apply(&mut image, &records);
        assert_eq!(image.topic("t").unwrap().partitions.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert!(create_partitions(&image, "t", 5, &[]).is_err());
    }

    #[test]
    fn given_producer_id_blocks_should_never_repeat() {
        let mut image = image_with_brokers(1);
        let (first, record) = allocate_producer_ids(&image, 0);
        apply(&mut image, &[record]);
        let (second, _) = allocate_producer_ids(&image, 0);
        assert_eq!(second, first + PRODUCER_ID_BLOCK_SIZE);
    }
}
