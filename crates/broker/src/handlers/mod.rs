//! One file per Kafka API, named after it. Each exports
//! `async fn handle(ctx, request) -> Result<Response, BrokerError>`; an `Err` closes the
//! connection, so per-topic and per-partition failures are answered as error codes instead.

pub(crate) mod acls;
pub(crate) mod add_offsets_to_txn;
pub(crate) mod add_partitions_to_txn;
pub(crate) mod alter_configs;
pub(crate) mod alter_partition_reassignments;
pub(crate) mod api_versions;
pub(crate) mod consumer_group_describe;
pub(crate) mod consumer_group_heartbeat;
pub(crate) mod create_partitions;
pub(crate) mod create_topics;
pub(crate) mod delete_groups;
pub(crate) mod delete_records;
pub(crate) mod delete_topics;
pub(crate) mod describe_cluster;
pub(crate) mod describe_configs;
pub(crate) mod describe_groups;
pub(crate) mod describe_log_dirs;
pub(crate) mod describe_producers;
pub(crate) mod describe_quorum;
pub(crate) mod describe_topic_partitions;
pub(crate) mod describe_transactions;
pub(crate) mod elect_leaders;
pub(crate) mod end_txn;
pub(crate) mod fetch;
pub(crate) mod find_coordinator;
pub(crate) mod heartbeat;
pub(crate) mod incremental_alter_configs;
pub(crate) mod init_producer_id;
pub(crate) mod join_group;
pub(crate) mod leave_group;
pub(crate) mod list_groups;
pub(crate) mod list_offsets;
pub(crate) mod list_partition_reassignments;
pub(crate) mod list_transactions;
pub(crate) mod metadata;
pub(crate) mod offset_commit;
pub(crate) mod offset_delete;
pub(crate) mod offset_fetch;
pub(crate) mod offset_for_leader_epoch;
pub(crate) mod produce;
pub(crate) mod raft_voters;
pub(crate) mod sasl;
pub(crate) mod scram_credentials;
pub(crate) mod sync_group;
pub(crate) mod txn_offset_commit;
pub(crate) mod write_txn_markers;

use std::net::SocketAddr;
use std::sync::Arc;

use gregor_protocol::kafka_protocol::messages::RequestHeader;
use gregor_protocol::kafka_protocol::protocol::StrBytes;
use gregor_protocol::kafka_protocol::ResponseError;

use crate::broker::Broker;

/// What every handler gets besides its request.
#[derive(Debug)]
pub(crate) struct RequestContext<'a> {
    pub(crate) broker: &'a Arc<Broker>,
    pub(crate) header: &'a RequestHeader,
    pub(crate) api_version: i16,
    pub(crate) peer: SocketAddr,
    /// The listener the request came on: Metadata and FindCoordinator answer with the
    /// brokers' endpoints of the same listener.
    pub(crate) listener: &'a str,
    /// Kafka's principal of the connection (`User:alice`, `User:ANONYMOUS`).
    pub(crate) principal: &'a str,
    /// The client's address as Kafka's ACL hosts spell it.
    pub(crate) host: &'a str,
}

impl RequestContext<'_> {
    /// Whether the caller may do `op` on the resource (always, without an authorizer).
    pub(crate) fn allowed(&self, op: crate::authz::Op, res: crate::authz::Res, name: &str) -> bool {
        self.broker.authz.allowed(&self.broker.image(), (self.principal, self.host), op, res, name)
    }

    /// As `allowed`, on the cluster resource.
    pub(crate) fn allowed_on_cluster(&self, op: crate::authz::Op) -> bool {
        self.allowed(op, crate::authz::Res::Cluster, crate::authz::CLUSTER_NAME)
    }
}

/// Authorized-operations bit fields (bit n = Kafka `AclOperation` code n). With no
/// authorizer every operation a resource type supports is allowed, as in Kafka.
pub(crate) mod authorized_operations {
    const fn bits(ops: &[u8]) -> i32 {
        let mut out = 0;
        let mut i = 0;
        while i < ops.len() {
            out |= 1 << ops[i];
            i += 1;
        }
        out
    }
    // READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9,
    // DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12
    pub(crate) const CLUSTER: i32 = bits(&[5, 7, 8, 9, 10, 11, 12]);
    pub(crate) const TOPIC: i32 = bits(&[3, 4, 5, 6, 7, 8, 10, 11]);
    pub(crate) const GROUP: i32 = bits(&[3, 6, 8]);
    /// The value Kafka sends when the client did not ask.
    pub(crate) const NOT_REQUESTED: i32 = i32::MIN;
}

/// The caller as the group coordinator records it (Kafka writes the host as `/ip`).
pub(crate) fn caller(ctx: &RequestContext<'_>) -> crate::group_coordinator::Caller {
    crate::group_coordinator::Caller {
        api_version: ctx.api_version,
        client_id: ctx.header.client_id.as_deref().unwrap_or_default().to_owned(),
        client_host: format!("/{}", ctx.peer.ip()),
    }
}

/// The `error_code` and `error_message` Kafka answers for an outcome.
pub(crate) fn error_parts(outcome: &Result<(), crate::BrokerError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code(), Some(str_bytes(&e.to_string()))),
    }
}

/// `isolation_level` of Fetch and ListOffsets asking for committed data only.
pub(crate) const READ_COMMITTED: i8 = 1;

/// PRODUCER_FENCED as a client of `version` understands it: versions before KIP-588's
/// (`fenced_since`) know only INVALID_PRODUCER_EPOCH.
pub(crate) fn txn_error(error: ResponseError, version: i16, fenced_since: i16) -> i16 {
    match error {
        ResponseError::ProducerFenced if version < fenced_since => ResponseError::InvalidProducerEpoch.code(),
        e => e.code(),
    }
}

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Runs the produce and fetch paths' page-cache I/O on the current worker thread: a
/// hand-off to the blocking pool costs two thread switches per request, more than the
/// write or read itself. `block_in_place` first moves this worker's other tasks to
/// another thread, so an append that must fsync stalls no other connection. A
/// current-thread runtime (an embedding application's choice) cannot do that, so there
/// the work still goes to the blocking pool.
pub(crate) async fn data_path<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => blocking(f).await,
    }
}

/// Runs blocking disk or metadata work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Takes out of a commit the partitions the metadata does not know and returns them by
/// topic. Kafka answers those UNKNOWN_TOPIC_OR_PARTITION before the group coordinator
/// sees the commit, so no group holds offsets for a topic that does not exist.
pub(crate) fn take_unknown_partitions<T, P>(
    broker: &Broker,
    topics: &mut Vec<T>,
    parts: impl Fn(&mut T) -> (&str, &mut Vec<P>),
    index: impl Fn(&P) -> i32,
) -> Vec<(String, Vec<i32>)> {
    let image = broker.image();
    let mut unknown = Vec::new();
    for topic in topics.iter_mut() {
        let (name, partitions) = parts(topic);
        let known = image.topic(name).map(|t| &t.partitions);
        let missing: Vec<i32> =
            partitions.iter().map(&index).filter(|p| !known.is_some_and(|k| k.contains_key(p))).collect();
        if !missing.is_empty() {
            partitions.retain(|p| !missing.contains(&index(p)));
            unknown.push((name.to_owned(), missing));
        }
    }
    topics.retain_mut(|t| !parts(t).1.is_empty());
    unknown
}
