//! Produce: validates and appends record batches as they came off the wire.
//!
//! One request's appends run together on the blocking pool, partition by partition,
//! each under that partition's lock only. `acks=1` answers after the leader's append
//! reached its log (the page cache, or the disk when `flush.messages` says so).
//! `acks=all` is refused before the append while the ISR is below `min.insync.replicas`
//! (NOT_ENOUGH_REPLICAS), and answered once the high watermark passed the records, that
//! is once every ISR member has them (Kafka's delayed produce): REQUEST_TIMED_OUT if that
//! takes longer than the request's timeout, NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR
//! shrank below the minimum meanwhile, NOT_LEADER_OR_FOLLOWER if leadership moved.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use gregor_protocol::kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use gregor_protocol::kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader, TopicName};
use gregor_protocol::kafka_protocol::ResponseError;
use gregor_protocol::record_batch::RecordBatchHeader;
use gregor_protocol::{ProtocolError, TopicPartition};

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{blocking, data_path, str_bytes, RequestContext};
use crate::authz::{Op, Res};
use crate::broker::{now_ms, Broker};
use crate::replica_manager::{Partition, ReplicaManager};
use crate::BrokerError;

pub(crate) async fn handle(ctx: &RequestContext<'_>, request: ProduceRequest) -> Result<ProduceResponse, BrokerError> {
    let version = ctx.api_version;
    if !matches!(request.acks, -1..=1) {
        return Ok(all_failed(&request, ResponseError::InvalidRequiredAcks));
    }
    // Transactional records need WRITE on the transactional id (Kafka fails the whole
    // request, every partition, with TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    if let Some(id) = request.transactional_id.as_ref().filter(|_| has_transactional_records(&request)) {
        if !ctx.allowed(Op::Write, Res::TransactionalId, id.0.as_str()) {
            return Ok(all_failed(&request, ResponseError::TransactionalIdAuthorizationFailed));
        }
    }
    let mut work = Vec::new();
    for topic in request.topic_data {
        let name = resolve_topic(ctx, &topic.name.0, topic.topic_id).await;
        let partitions = topic.partition_data.into_iter().map(|p| (p.index, p.records.unwrap_or_default())).collect();
        work.push((topic.name, topic.topic_id, name, partitions));
    }
    let broker = ctx.broker.clone();
    let txn = request.transactional_id.map(|t| t.0.to_string());
    let acks = request.acks;
    let (mut responses, waits): (Vec<TopicProduceResponse>, Vec<Vec<Wait>>) =
        data_path(move || work.into_iter().map(|w| append_topic(&broker, w, (version, acks), txn.as_deref())).unzip())
            .await;
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    await_replication(&mut responses, waits, Instant::now() + timeout).await;
    Ok(ProduceResponse::default().with_responses(responses))
}

/// An `acks=all` append waiting for its records to be replicated: the partition (in the
/// epoch it was appended in) and the high watermark it needs.
type Wait = Option<(Arc<Partition>, i64)>;

/// Waits until every `acks=all` append is replicated to the ISR, or the deadline, and
/// turns the ones that are not into errors.
async fn await_replication(responses: &mut [TopicProduceResponse], waits: Vec<Vec<Wait>>, deadline: Instant) {
    for (topic, waits) in responses.iter_mut().zip(waits) {
        for (response, wait) in topic.partition_responses.iter_mut().zip(waits) {
            let Some((partition, required)) = wait else { continue };
            if let Some(error) = ReplicaManager::replicated(&partition, required, deadline).await {
                *response = std::mem::take(response).with_error_code(error.code()).with_base_offset(-1);
            }
        }
    }
}

type TopicWork = (TopicName, gregor_metadata::Uuid, Result<String, ResponseError>, Vec<(i32, Bytes)>);

/// Whether the first batch of any partition is transactional (Kafka's
/// `RequestUtils.hasTransactionalRecords`).
fn has_transactional_records(request: &ProduceRequest) -> bool {
    request.topic_data.iter().flat_map(|t| &t.partition_data).any(|p| {
        p.records.as_ref().and_then(|r| RecordBatchHeader::parse(r).ok()).is_some_and(|h| h.is_transactional())
    })
}

/// The topic's name, creating the topic first when auto-creation is on. WRITE on the
/// topic is checked before its existence, as Kafka does (an unknown topic the caller
/// may not write is TOPIC_AUTHORIZATION_FAILED); auto-creation needs CREATE on the
/// cluster or on the topic.
async fn resolve_topic(
    ctx: &RequestContext<'_>,
    name: &str,
    topic_id: gregor_metadata::Uuid,
) -> Result<String, ResponseError> {
    let image = ctx.broker.image();
    if !topic_id.is_nil() {
        let name = image.topic_by_id(&topic_id).map(|t| t.name.to_string()).ok_or(ResponseError::UnknownTopicId)?;
        return if ctx.allowed(Op::Write, Res::Topic, &name) {
            Ok(name)
        } else {
            Err(ResponseError::TopicAuthorizationFailed)
        };
    }
    if !ctx.allowed(Op::Write, Res::Topic, name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    // Only the coordinators write to internal topics, as in Kafka.
    if super::metadata::is_internal(name) {
        return Err(ResponseError::InvalidTopicException);
    }
    if image.topic(name).is_some() {
        return Ok(name.to_owned());
    }
    if gregor_metadata::control::validate_topic_name(name).is_err() {
        return Err(ResponseError::InvalidTopicException);
    }
    if !ctx.broker.config.broker_bool("auto.create.topics.enable") {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    if !ctx.allowed_on_cluster(Op::Create) && !ctx.allowed(Op::Create, Res::Topic, name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    let (broker, created) = (ctx.broker.clone(), name.to_owned());
    match blocking(move || broker.auto_create_topic(&created)).await {
        Ok(()) => Ok(name.to_owned()),
        Err(e) => Err(e.response_error()),
    }
}

fn append_topic(
    broker: &Broker,
    (wire_name, topic_id, name, partitions): TopicWork,
    (version, acks): (i16, i16),
    transactional_id: Option<&str>,
) -> (TopicProduceResponse, Vec<Wait>) {
    let (responses, waits) = partitions
        .into_iter()
        .map(|(index, records)| match &name {
            Ok(name) => {
                let tp = TopicPartition::new(name.as_str(), index);
                match verify_transactional(broker, &tp, &records, transactional_id) {
                    Ok(()) => append_partition(broker, &tp, records, (version, acks)),
                    Err(e) => (partition_error(index, e, None, version), None),
                }
            }
            Err(e) => (partition_error(index, *e, None, version), None),
        })
        .unzip();
    let response = TopicProduceResponse::default()
        .with_name(wire_name)
        .with_topic_id(topic_id)
        .with_partition_responses(responses);
    (response, waits)
}

/// Transactional batches are accepted only from the producer that holds the
/// transactional id, at its current epoch, into a partition its open transaction added
/// (KIP-890's verification): a zombie or a write that skipped AddPartitionsToTxn cannot
/// leave a transaction hanging open in the log.
fn verify_transactional(
    broker: &Broker,
    tp: &TopicPartition,
    records: &Bytes,
    transactional_id: Option<&str>,
) -> Result<(), ResponseError> {
    let Ok(header) = RecordBatchHeader::parse(records) else { return Ok(()) }; // the log reports it
    if !header.is_transactional() {
        return Ok(());
    }
    let Some(id) = transactional_id else { return Err(ResponseError::InvalidTxnState) };
    let producer = (header.producer_id(), header.producer_epoch());
    crate::inter_broker::verify_in_transaction(broker, id, producer, tp).map_err(|e| match e {
        // Produce has no PRODUCER_FENCED: clients read INVALID_PRODUCER_EPOCH as fenced.
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        e => e,
    })
}

fn append_partition(
    broker: &Broker,
    tp: &TopicPartition,
    records: Bytes,
    (version, acks): (i16, i16),
) -> (PartitionProduceResponse, Wait) {
    if let Err(e) = broker.leader_partition(&broker.image(), tp) {
        return (partition_error(tp.partition, e, None, version), None);
    }
    // The batches are rewritten in place (offsets, leader epoch); this is the one copy
    // of the record bytes between the socket buffer and the file.
    let mut records = BytesMut::from(records);
    match broker.replicas.append(tp, &mut records, acks, now_ms()) {
        Ok((info, partition)) => {
            let response = PartitionProduceResponse::default()
                .with_index(tp.partition)
                .with_base_offset(info.first_offset)
                .with_log_append_time_ms(info.log_append_time_ms)
                .with_log_start_offset(info.log_start_offset);
            (response, (acks == -1).then_some((partition, info.last_offset + 1)))
        }
        Err(e) => {
            tracing::debug!(partition = %tp, error = %e, "produce refused");
            let response = partition_error(tp.partition, e.response_error(), Some(e.to_string()), version);
            let response = match e.rejected_records() {
                Some((reason, indexes)) if version >= 8 => {
                    response.with_record_errors(record_errors(tp, reason, indexes))
                }
                _ => response,
            };
            (response, None)
        }
    }
}

/// KIP-467: the records at fault, so the client fails them and retries none of the batch.
fn record_errors(tp: &TopicPartition, reason: &str, indexes: &[i32]) -> Vec<BatchIndexAndErrorMessage> {
    let message = str_bytes(&format!("{reason} in topic partition {tp}."));
    indexes
        .iter()
        .map(|&i| {
            BatchIndexAndErrorMessage::default()
                .with_batch_index(i)
                .with_batch_index_error_message(Some(message.clone()))
        })
        .collect()
}

fn partition_error(
    index: i32,
    error: ResponseError,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1);
    if version >= 8 {
        response.with_error_message(message.map(|m| str_bytes(&m)))
    } else {
        response
    }
}

fn all_failed(request: &ProduceRequest, error: ResponseError) -> ProduceResponse {
    let responses = request
        .topic_data
        .iter()
        .map(|t| {
            let partitions = t.partition_data.iter().map(|p| partition_error(p.index, error, None, 0)).collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

/// The `acks` of an encoded Produce body (v3+), read without decoding the records, so
/// the dispatcher knows whether a response is due.
pub(crate) fn acks_of(body: &[u8], version: i16) -> Option<i16> {
    let mut b = body;
    if version >= 9 {
        // compact nullable string: unsigned varint length + 1
        let mut len: u64 = 0;
        for shift in (0..35).step_by(7) {
            let byte = *b.first()?;
            b = &b[1..];
            len |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        b = b.get(usize::try_from(len.saturating_sub(1)).ok()?..)?;
    } else {
        let len = i16::from_be_bytes([*b.first()?, *b.get(1)?]);
        b = b.get(2 + usize::try_from(len.max(0)).ok()?..)?;
    }
    Some(i16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Produce v0-2 (the pre-0.11 message formats) is advertised but refused, as Kafka 4
/// does: each partition gets UNSUPPORTED_VERSION in the old response layout,
/// which `kafka-protocol` no longer encodes, so it is written here by hand.
pub(crate) fn refuse_legacy(header: &RequestHeader, body: &mut Bytes) -> Result<Option<BytesMut>, ProtocolError> {
    let short = || ProtocolError::CorruptBatch("truncated Produce v0-2 request");
    let need = |b: &Bytes, n: usize| if b.remaining() >= n { Ok(()) } else { Err(short()) };
    need(body, 10)?;
    let acks = body.get_i16();
    let _timeout = body.get_i32();
    let topic_count = body.get_i32().max(0);
    let mut topics = Vec::new();
    for _ in 0..topic_count {
        need(body, 2)?;
        let name_len = usize::try_from(body.get_i16()).map_err(|_| short())?;
        need(body, name_len + 4)?;
        let name = body.split_to(name_len);
        let mut partitions = Vec::new();
        for _ in 0..body.get_i32().max(0) {
            need(body, 8)?;
            partitions.push(body.get_i32());
            let len = usize::try_from(body.get_i32()).unwrap_or(0);
            need(body, len)?;
            body.advance(len);
        }
        topics.push((name, partitions));
    }
    if acks == 0 {
        return Ok(None);
    }
    Ok(Some(encode_legacy_response(header, &topics)))
}

fn encode_legacy_response(header: &RequestHeader, topics: &[(Bytes, Vec<i32>)]) -> BytesMut {
    let version = header.request_api_version;
    let mut out = BytesMut::new();
    out.put_i32(0); // length, patched below
    out.put_i32(header.correlation_id);
    out.put_i32(topics.len() as i32);
    for (name, partitions) in topics {
        out.put_i16(name.len() as i16);
        out.put_slice(name);
        out.put_i32(partitions.len() as i32);
        for p in partitions {
            out.put_i32(*p);
            out.put_i16(ResponseError::UnsupportedVersion.code());
            out.put_i64(-1);
            if version >= 2 {
                out.put_i64(-1);
            }
        }
    }
    if version >= 1 {
        out.put_i32(0); // throttle_time_ms
    }
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_encoded_request_should_peek_acks() {
        for version in [3, 8, 9, 11] {
            let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5);
            let mut buf = BytesMut::new();
            gregor_protocol::kafka_protocol::protocol::Encodable::encode(&request, &mut buf, version).unwrap();
            assert_eq!(acks_of(&buf, version), Some(-1), "v{version}");
        }
        assert_eq!(acks_of(&[], 3), None);
        assert_eq!(acks_of(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 9), None);
    }
}
