//! The in-memory image of the cluster metadata: what replaying every record in order
//! yields. Deterministic: the same records give the same image on every node.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::record::{BrokerRegistration, ConfigResource, MetadataRecord, PartitionRegistration};

/// One topic: its id, partitions and topic-level config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: Arc<str>,
    pub topic_id: Uuid,
    pub partitions: BTreeMap<i32, PartitionRegistration>,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    topics: HashMap<Arc<str>, TopicImage>,
    topic_names: HashMap<Uuid, Arc<str>>,
    /// Broker configs: key `None` holds the cluster-wide defaults.
    pub broker_configs: BTreeMap<Option<i32>, BTreeMap<String, String>>,
    pub next_producer_id: i64,
    /// Set by the first [`MetadataRecord::ClusterId`]; later ones cannot change it.
    pub cluster_id: Option<String>,
    /// The voters as last changed at run time (`None`: as bootstrapped).
    pub quorum_voters: Option<Vec<u64>>,
    /// SCRAM credentials by (user, mechanism type), in their stored form.
    pub scram_credentials: BTreeMap<(String, i8), String>,
    /// Every ACL, in a deterministic order.
    pub acls: std::collections::BTreeSet<crate::record::AclEntry>,
    /// Offset of the last record applied, -1 for none.
    pub last_offset: i64,
}

impl MetadataImage {
    pub fn new() -> Self {
        Self { last_offset: -1, ..Self::default() }
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names.get(id).and_then(|name| self.topics.get(name))
    }

    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// Registered brokers that are not fenced: the ones Metadata lists and placement uses.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Topic names in a stable order, for listings.
    pub fn topic_names_sorted(&self) -> Vec<Arc<str>> {
        let mut names: Vec<_> = self.topics.keys().cloned().collect();
        names.sort();
        names
    }

    /// Applies one record. Records that name unknown topics are ignored: they can only
    /// come from a topic deleted earlier in the same log.
    pub fn replay(&mut self, offset: i64, record: &MetadataRecord) {
        self.last_offset = offset;
        match record {
            MetadataRecord::RegisterBroker(b) => {
                // A snapshot carries the epoch the registration got; a new one gets its offset.
                let epoch = if b.epoch > 0 { b.epoch } else { offset.max(0) };
                let _ = self.brokers.insert(b.node_id, BrokerRegistration { epoch, ..b.clone() });
            }
            MetadataRecord::BrokerRegistrationChange { node_id, epoch, fenced } => {
                if let Some(b) = self.brokers.get_mut(node_id).filter(|b| b.epoch == *epoch) {
                    b.fenced = *fenced;
                }
            }
            MetadataRecord::Topic { name, topic_id } => self.add_topic(name, *topic_id),
            MetadataRecord::Partition(p) => self.set_partition(p),
            MetadataRecord::Config { resource, name, value } => self.set_config(resource, name, value.as_deref()),
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(name) = self.topic_names.remove(topic_id) {
                    let _ = self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIds { next_producer_id, .. } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::ClusterId { cluster_id } => {
                let _ = self.cluster_id.get_or_insert_with(|| cluster_id.clone());
            }
            MetadataRecord::QuorumVoters { voters } => self.quorum_voters = Some(voters.clone()),
            MetadataRecord::Acl { acl, removed } => {
                if *removed {
                    let _ = self.acls.remove(acl);
                } else {
                    let _ = self.acls.insert(acl.clone());
                }
            }
            MetadataRecord::UserScramCredential { name, mechanism, credential } => {
                let key = (name.clone(), *mechanism);
                match credential {
                    Some(c) => drop(self.scram_credentials.insert(key, c.clone())),
                    None => drop(self.scram_credentials.remove(&key)),
                }
            }
        }
    }

    /// Records that rebuild this image when replayed into an empty one: the content of a
    /// metadata snapshot (Kafka's `.checkpoint` files hold the same kind of records). The
    /// order is deterministic, so equal images give equal snapshots.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            out.push(MetadataRecord::ClusterId { cluster_id: cluster_id.clone() });
        }
        if let Some(voters) = &self.quorum_voters {
            out.push(MetadataRecord::QuorumVoters { voters: voters.clone() });
        }
        out.extend(self.brokers.values().cloned().map(MetadataRecord::RegisterBroker));
        if self.next_producer_id > 0 {
            out.push(MetadataRecord::ProducerIds { broker_id: -1, next_producer_id: self.next_producer_id });
        }
        out.extend(self.scram_credentials.iter().map(|((name, mechanism), credential)| {
            MetadataRecord::UserScramCredential {
                name: name.clone(),
                mechanism: *mechanism,
                credential: Some(credential.clone()),
            }
        }));
        out.extend(self.acls.iter().map(|acl| MetadataRecord::Acl { acl: acl.clone(), removed: false }));
        for (id, configs) in &self.broker_configs {
            out.extend(configs.iter().map(|(name, value)| MetadataRecord::Config {
                resource: ConfigResource::Broker(*id),
                name: name.clone(),
                value: Some(value.clone()),
            }));
        }
        for name in self.topic_names_sorted() {
            let Some(topic) = self.topics.get(&name) else { continue };
            out.push(MetadataRecord::Topic { name: name.to_string(), topic_id: topic.topic_id });
            out.extend(topic.partitions.values().cloned().map(MetadataRecord::Partition));
            out.extend(topic.configs.iter().map(|(key, value)| MetadataRecord::Config {
                resource: ConfigResource::Topic(name.to_string()),
                name: key.clone(),
                value: Some(value.clone()),
            }));
        }
        out
    }

    fn add_topic(&mut self, name: &str, topic_id: Uuid) {
        let name: Arc<str> = name.into();
        let _ = self.topic_names.insert(topic_id, name.clone());
        let topic = TopicImage { name: name.clone(), topic_id, partitions: BTreeMap::new(), configs: BTreeMap::new() };
        let _ = self.topics.insert(name, topic);
    }

    fn set_partition(&mut self, p: &PartitionRegistration) {
        let Some(name) = self.topic_names.get(&p.topic_id) else { return };
        if let Some(topic) = self.topics.get_mut(name) {
            let _ = topic.partitions.insert(p.partition, p.clone());
        }
    }

    fn set_config(&mut self, resource: &ConfigResource, name: &str, value: Option<&str>) {
        let map = match resource {
            ConfigResource::Topic(topic) => match self.topics.get_mut(topic.as_str()) {
                Some(t) => &mut t.configs,
                None => return,
            },
            ConfigResource::Broker(id) => self.broker_configs.entry(*id).or_default(),
        };
        match value {
            Some(v) => {
                let _ = map.insert(name.to_owned(), v.to_owned());
            }
            None => {
                let _ = map.remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(topic_id: Uuid, partition: i32) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRegistration {
            topic_id,
            partition,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            ..Default::default()
        })
    }

    #[test]
    fn given_topic_records_when_replayed_should_build_topic() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::new();
        image.replay(0, &MetadataRecord::Topic { name: "orders".into(), topic_id: id });
        image.replay(1, &partition(id, 0));
        image.replay(2, &partition(id, 1));
        let config = MetadataRecord::Config {
            resource: ConfigResource::Topic("orders".into()),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        };
        image.replay(3, &config);
        let topic = image.topic("orders").unwrap();
        assert_eq!(topic.partitions.len(), 2);
        assert_eq!(topic.configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(image.topic_by_id(&id).unwrap().name.as_ref(), "orders");
        assert_eq!(image.last_offset, 3);
    }

    #[test]
    fn given_an_image_when_its_records_are_replayed_should_rebuild_it() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::new();
        image.replay(0, &MetadataRecord::ClusterId { cluster_id: "c1".into() });
        image.replay(1, &MetadataRecord::ClusterId { cluster_id: "other".into() });
        image.replay(2, &MetadataRecord::Topic { name: "t".into(), topic_id: id });
        image.replay(3, &partition(id, 0));
        image.replay(4, &MetadataRecord::ProducerIds { broker_id: 1, next_producer_id: 1000 });
        let config =
            |resource| MetadataRecord::Config { resource, name: "retention.ms".into(), value: Some("1".into()) };
        image.replay(5, &config(ConfigResource::Topic("t".into())));
        image.replay(6, &config(ConfigResource::Broker(None)));
        let b =
            BrokerRegistration { node_id: 1, host: "h".into(), port: 1, rack: Some("r".into()), ..Default::default() };
        image.replay(7, &MetadataRecord::RegisterBroker(b));
        image.replay(8, &MetadataRecord::BrokerRegistrationChange { node_id: 1, epoch: 7, fenced: true });
        assert!(image.brokers[&1].fenced && image.brokers[&1].epoch == 7, "the epoch is the registration's offset");
        image.replay(9, &MetadataRecord::BrokerRegistrationChange { node_id: 1, epoch: 3, fenced: false });
        assert!(image.brokers[&1].fenced, "a change for an older epoch is ignored");
        assert_eq!(image.cluster_id.as_deref(), Some("c1"), "the first cluster id stays");
        let mut rebuilt = MetadataImage::new();
        for record in image.to_records() {
            rebuilt.replay(9, &record);
        }
        assert_eq!(rebuilt, image);
        assert_eq!(rebuilt.to_records(), image.to_records());
    }

    #[test]
    fn given_remove_topic_when_replayed_should_forget_it() {
        let id = Uuid::new_v4();
        let mut image = MetadataImage::new();
        image.replay(0, &MetadataRecord::Topic { name: "t".into(), topic_id: id });
        image.replay(1, &MetadataRecord::RemoveTopic { topic_id: id });
        image.replay(2, &partition(id, 0));
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(&id).is_none());
    }
}
