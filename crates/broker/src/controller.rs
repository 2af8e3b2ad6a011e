//! The controller's commands: every metadata change a broker asks for, as data, so that a
//! broker that is not the active controller sends it to the one that is (as Kafka's
//! brokers forward CreateTopics and send BrokerRegistration / AllocateProducerIds to
//! the controller). The active controller decides each one against its image, as a pure
//! function, and commits the records through the quorum.

use gregor_metadata::control::{self, NewTopic};
use gregor_metadata::replication_control::{on_broker_change, BrokerChange};
use gregor_metadata::{BrokerRegistration, MetadataImage, MetadataRecord};
use serde::{Deserialize, Serialize};

use crate::config::change::{self, ConfigOp};
use crate::config::BrokerConfig;
use crate::BrokerError;

/// A CreateTopics entry as the controller receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicSpec {
    pub(crate) name: String,
    pub(crate) num_partitions: i32,
    pub(crate) replication_factor: i32,
    pub(crate) assignments: Vec<(i32, Vec<i32>)>,
    pub(crate) configs: Vec<(String, String)>,
}

impl TopicSpec {
    pub(crate) fn of(topic: &NewTopic) -> Self {
        Self {
            name: topic.name.clone(),
            num_partitions: topic.num_partitions,
            replication_factor: topic.replication_factor,
            assignments: topic.assignments.clone(),
            configs: topic.configs.clone(),
        }
    }

    fn to_new_topic(&self) -> NewTopic {
        NewTopic {
            name: self.name.clone(),
            num_partitions: self.num_partitions,
            replication_factor: self.replication_factor,
            assignments: self.assignments.clone(),
            configs: self.configs.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ControllerCommand {
    RegisterBroker(BrokerRegistration),
    CreateTopic(TopicSpec),
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        total: i32,
        assignments: Vec<Vec<i32>>,
    },
    AlterConfigs {
        resource_type: i8,
        resource_name: String,
        changes: Vec<(String, ConfigOp)>,
        replace_all: bool,
        validate_only: bool,
    },
    AllocateProducerIds {
        broker_id: i32,
    },
    /// AlterUserScramCredentials, validated by the handler: per (user, mechanism type)
    /// the new stored credential, or `None` to delete it.
    AlterScramCredentials {
        changes: Vec<(String, i8, Option<String>)>,
    },
    /// CreateAcls and DeleteAcls: ACLs to add and to remove (already validated/matched).
    AlterAcls {
        add: Vec<gregor_metadata::AclEntry>,
        remove: Vec<gregor_metadata::AclEntry>,
    },
    /// Not a change: the active controller's view of the quorum (DescribeQuorum).
    DescribeQuorum,
    /// KIP-853: makes `node_id`, reachable at its controller listener `host:port`, a voter
    /// (a membership change of the quorum, not a metadata record).
    AddVoter {
        node_id: i32,
        host: String,
        port: u16,
    },
    /// KIP-853: removes voter `node_id` from the quorum.
    RemoveVoter {
        node_id: i32,
    },
    /// KIP-631: the broker is alive and has applied the metadata log up to
    /// `metadata_offset`; a fenced broker that caught up with its registration is unfenced.
    BrokerHeartbeat {
        node_id: i32,
        epoch: i64,
        metadata_offset: i64,
    },
    /// The active controller fences a broker whose heartbeats stopped.
    FenceBroker {
        node_id: i32,
        epoch: i64,
    },
    /// A broker stopping on purpose (SIGTERM) asks to be fenced first, so clients move
    /// away before it goes (Kafka's controlled shutdown; moving partition leaders to
    /// other in-sync replicas joins it with replication).
    ControlledShutdown {
        node_id: i32,
        epoch: i64,
    },
    /// KIP-497: a partition leader's ISR change.
    AlterPartition(gregor_metadata::replication_control::AlterPartition),
    /// ElectLeaders: `None` is every partition (and only those that need it are answered).
    ElectLeaders {
        election: gregor_metadata::replication_control::ElectionType,
        partitions: Option<Vec<(String, i32)>>,
    },
    /// AlterPartitionReassignments (KIP-455): per partition its target replicas, or
    /// `None` to cancel; `allow_rf_change: false` refuses a target of another size (KIP-860).
    AlterReassignments {
        partitions: Vec<(String, i32, Option<Vec<i32>>)>,
        allow_rf_change: bool,
    },
}

/// What a command returns besides its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ControllerAnswer {
    Done,
    /// The first id of the block of producer ids reserved for the broker.
    ProducerIds {
        start: i64,
    },
    Quorum(gregor_quorum::QuorumStatus),
    /// Whether the broker is still fenced after this heartbeat.
    Heartbeat {
        fenced: bool,
    },
    /// Per partition asked: `None` when elected, else why not.
    Elections(Vec<(String, i32, Option<gregor_metadata::replication_control::NoElection>)>),
    /// Per partition asked: `None` when accepted, else the error.
    Reassignments(Vec<(String, i32, Option<CommandFailure>)>),
}

/// STALE_BROKER_EPOCH: the broker must register again (its registration was replaced).
fn stale(node_id: i32, epoch: i64) -> BrokerError {
    BrokerError::Remote {
        code: gregor_protocol::kafka_protocol::ResponseError::StaleBrokerEpoch.code(),
        message: format!("broker {node_id} has no registration with epoch {epoch}"),
    }
}

/// A command's failure as it travels back to the forwarding broker: Kafka's error code
/// and the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CommandFailure {
    pub(crate) code: i16,
    pub(crate) message: String,
}

impl ControllerCommand {
    /// The records that carry out this command on `image`; `config` is the controller's
    /// static config (dynamic values come from the image).
    pub(crate) fn decide(
        &self,
        image: &MetadataImage,
        config: &BrokerConfig,
    ) -> Result<(Vec<MetadataRecord>, ControllerAnswer), BrokerError> {
        let done = |records| Ok((records, ControllerAnswer::Done));
        let effective = config.with_dynamic(config.node_id(), &image.broker_configs);
        let unclean = |topic: &gregor_metadata::TopicImage| {
            effective.topic_bool("unclean.leader.election.enable", &topic.configs)
        };
        let follow = |node_id: i32, change: BrokerChange| on_broker_change(image, node_id, change, &unclean);
        // A broker fenced or unfenced, and the leaders and ISRs that change with it.
        let fencing = |node_id: i32, epoch: i64, fenced: bool| {
            let mut records = vec![MetadataRecord::BrokerRegistrationChange { node_id, epoch, fenced }];
            records.extend(follow(node_id, if fenced { BrokerChange::Fenced } else { BrokerChange::Unfenced }));
            records
        };
        match self {
            // A retry of the same incarnation changes nothing; a new one (a restarted
            // broker, or a new address) registers again and gets a new epoch. It may have
            // lost its log's tail (a power loss): it leaves every ISR and catches up first.
            Self::RegisterBroker(me) => match image.brokers.get(&me.node_id) {
                Some(existing) if existing.incarnation_id == me.incarnation_id && !existing.fenced => done(vec![]),
                _ => {
                    let mut records = vec![MetadataRecord::RegisterBroker(BrokerRegistration {
                        epoch: 0,
                        fenced: false,
                        ..me.clone()
                    })];
                    records.extend(follow(me.node_id, BrokerChange::Restarted));
                    done(records)
                }
            },
            Self::BrokerHeartbeat { node_id, epoch, metadata_offset } => {
                let current =
                    image.brokers.get(node_id).filter(|b| b.epoch == *epoch).ok_or_else(|| stale(*node_id, *epoch))?;
                let catching_up = *metadata_offset < current.epoch;
                let records = if current.fenced && !catching_up { fencing(*node_id, *epoch, false) } else { vec![] };
                Ok((records, ControllerAnswer::Heartbeat { fenced: current.fenced && catching_up }))
            }
            Self::FenceBroker { node_id, epoch } => match image.brokers.get(node_id) {
                Some(b) if b.epoch == *epoch && !b.fenced => done(fencing(*node_id, *epoch, true)),
                _ => done(vec![]),
            },
            Self::ControlledShutdown { node_id, epoch } => {
                let current =
                    image.brokers.get(node_id).filter(|b| b.epoch == *epoch).ok_or_else(|| stale(*node_id, *epoch))?;
                // Its partitions move to other in-sync replicas before it stops.
                done(if current.fenced { vec![] } else { fencing(*node_id, *epoch, true) })
            }
            Self::ElectLeaders { election, partitions } => Ok(elect_leaders(image, *election, partitions.as_deref())),
            Self::AlterReassignments { partitions, allow_rf_change } => {
                Ok(alter_reassignments(image, partitions, *allow_rf_change))
            }
            Self::AlterPartition(request) => {
                let next = gregor_metadata::replication_control::alter_partition(image, request)?;
                done(vec![MetadataRecord::Partition(next)])
            }
            Self::CreateTopic(spec) => done(control::create_topic(image, &spec.to_new_topic())?),
            Self::DeleteTopic { name } => done(control::delete_topic(image, name)?),
            Self::CreatePartitions { name, total, assignments } => {
                done(control::create_partitions(image, name, *total, assignments)?)
            }
            Self::AlterConfigs { resource_type, resource_name, changes, replace_all, validate_only } => {
                let records = change::plan(image, &effective, (*resource_type, resource_name), changes, *replace_all)?;
                done(if *validate_only { vec![] } else { records })
            }
            Self::AllocateProducerIds { broker_id } => {
                let (start, record) = control::allocate_producer_ids(image, *broker_id);
                Ok((vec![record], ControllerAnswer::ProducerIds { start }))
            }
            Self::AlterScramCredentials { changes } => done(scram_records(changes)),
            Self::AlterAcls { add, remove } => done(acl_records(image, add, remove)),
            Self::DescribeQuorum | Self::AddVoter { .. } | Self::RemoveVoter { .. } => {
                Err(BrokerError::InvalidRequest("not a metadata change: served by the quorum itself".into()))
            }
        }
    }
}

/// ElectLeaders over the partitions named (all when `None`: then only the ones elected
/// are reported, as Kafka does).
fn elect_leaders(
    image: &MetadataImage,
    election: gregor_metadata::replication_control::ElectionType,
    partitions: Option<&[(String, i32)]>,
) -> (Vec<MetadataRecord>, ControllerAnswer) {
    use gregor_metadata::replication_control::elect;
    let all: Vec<(String, i32)>;
    let named = match partitions {
        Some(named) => named,
        None => {
            all = image.topics().flat_map(|t| t.partitions.keys().map(|p| (t.name.to_string(), *p))).collect();
            &all
        }
    };
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (topic, partition) in named {
        match elect(image, (topic, *partition), election) {
            Ok(next) => {
                records.push(MetadataRecord::Partition(next));
                results.push((topic.clone(), *partition, None));
            }
            Err(why) if partitions.is_some() => results.push((topic.clone(), *partition, Some(why))),
            Err(_) => {}
        }
    }
    (records, ControllerAnswer::Elections(results))
}

/// AlterPartitionReassignments: each partition decided on its own against `image`.
fn alter_reassignments(
    image: &MetadataImage,
    partitions: &[(String, i32, Option<Vec<i32>>)],
    allow_rf_change: bool,
) -> (Vec<MetadataRecord>, ControllerAnswer) {
    use gregor_metadata::reassignment;
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (topic, partition, target) in partitions {
        let current = image.topic(topic).and_then(|t| t.partitions.get(partition));
        let resized = current.zip(target.as_ref()).is_some_and(|(p, t)| p.target_replicas().len() != t.len());
        let outcome = if resized && !allow_rf_change {
            Err(CommandFailure {
                code: gregor_protocol::kafka_protocol::ResponseError::InvalidReplicationFactor.code(),
                message: "the reassignment changes the replication factor, which the request does not allow".into(),
            })
        } else {
            reassignment::alter(image, (topic, *partition), target.as_deref()).map_err(|e| {
                let e = BrokerError::from(e);
                CommandFailure { code: e.code(), message: e.to_string() }
            })
        };
        match outcome {
            Ok(next) => {
                records.extend(next.map(MetadataRecord::Partition));
                results.push((topic.clone(), *partition, None));
            }
            Err(failure) => results.push((topic.clone(), *partition, Some(failure))),
        }
    }
    (records, ControllerAnswer::Reassignments(results))
}

fn scram_records(changes: &[(String, i8, Option<String>)]) -> Vec<MetadataRecord> {
    changes
        .iter()
        .map(|(name, mechanism, credential)| MetadataRecord::UserScramCredential {
            name: name.clone(),
            mechanism: *mechanism,
            credential: credential.clone(),
        })
        .collect()
}

/// Records for the new ACLs (not there yet) and the removed ones (still there), so the
/// log never holds duplicates.
fn acl_records(
    image: &MetadataImage,
    add: &[gregor_metadata::AclEntry],
    remove: &[gregor_metadata::AclEntry],
) -> Vec<MetadataRecord> {
    let mut seen = std::collections::BTreeSet::new();
    let added = add
        .iter()
        .filter(|a| !image.acls.contains(*a) && seen.insert((*a).clone()))
        .map(|a| MetadataRecord::Acl { acl: a.clone(), removed: false });
    let removed: Vec<_> = remove
        .iter()
        .filter(|a| image.acls.contains(*a))
        .map(|a| MetadataRecord::Acl { acl: a.clone(), removed: true })
        .collect();
    added.collect::<Vec<_>>().into_iter().chain(removed).collect()
}
