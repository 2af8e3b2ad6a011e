//! `gregor transactions`: kafka-transactions.sh. Lists and describes transactions (from
//! their coordinators), describes a partition's producers, finds hanging transactions and
//! aborts one with a marker written to the partition's leader.

use clap::{Args, Subcommand};
use gregor_client::{Client, ProducerDescription};
use serde_json::{json, Value};

use crate::common::{connect, emit, emit_json, emitln, failed, format_ms, now_ms, run_async, table, usage};
use crate::common::{CliResult, Global, Output};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor transactions list
  gregor transactions describe --transactional-id payments-1
  gregor transactions describe-producers --topic orders --partition 0
  gregor transactions find-hanging --topic orders
  gregor transactions abort --topic orders --partition 0 --start-offset 1200")]
pub(crate) struct TransactionsArgs {
    #[command(subcommand)]
    command: TransactionsCommand,
}

#[derive(Debug, Subcommand)]
enum TransactionsCommand {
    /// Every transactional id with its coordinator, producer id and state.
    List,
    /// One transaction: coordinator, producer, state, start time, timeout, partitions.
    Describe {
        #[arg(long, value_name = "ID")]
        transactional_id: String,
    },
    /// The producers a partition remembers, with their open transaction's first offset.
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// Ask this replica instead of the leader.
        #[arg(long, value_name = "ID")]
        broker_id: Option<i32>,
    },
    /// Open transactions older than --max-transaction-timeout (minutes) in a topic's partitions.
    FindHanging {
        #[arg(long)]
        topic: String,
        /// Kafka's transaction.max.timeout.ms, in minutes (0: every open transaction).
        #[arg(long, value_name = "MINUTES", default_value_t = 15)]
        max_transaction_timeout: i64,
    },
    /// Abort a hanging transaction: by its first offset in the partition, or by producer.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// The open transaction's first offset (describe-producers' CurrentTransactionStartOffset).
        #[arg(long, value_name = "OFFSET", conflicts_with = "producer_id")]
        start_offset: Option<i64>,
        #[arg(long, value_name = "ID", requires_all = ["producer_epoch", "coordinator_epoch"])]
        producer_id: Option<i64>,
        #[arg(long, value_name = "EPOCH")]
        producer_epoch: Option<i16>,
        #[arg(long, value_name = "EPOCH")]
        coordinator_epoch: Option<i32>,
    },
}

pub(crate) fn run(args: TransactionsArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match args.command {
            TransactionsCommand::List => list(&mut client, global.output).await,
            TransactionsCommand::Describe { transactional_id } => {
                describe(&mut client, &transactional_id, global.output).await
            }
            TransactionsCommand::DescribeProducers { topic, partition, broker_id } => {
                let producers = client.describe_producers(&topic, partition, broker_id).await?;
                print_producers(&topic, &[(partition, producers)], global.output)
            }
            TransactionsCommand::FindHanging { topic, max_transaction_timeout } => {
                find_hanging(&mut client, &topic, max_transaction_timeout.saturating_mul(60_000), global.output).await
            }
            TransactionsCommand::Abort {
                topic,
                partition,
                start_offset,
                producer_id,
                producer_epoch,
                coordinator_epoch,
            } => {
                let producer = match (start_offset, producer_id, producer_epoch, coordinator_epoch) {
                    (Some(offset), None, _, _) => by_start_offset(&mut client, &topic, partition, offset).await?,
                    (None, Some(id), Some(epoch), Some(coordinator)) => (id, epoch, coordinator),
                    _ => {
                        return Err(usage(
                            "give --start-offset, or --producer-id, --producer-epoch and --coordinator-epoch",
                        ))
                    }
                };
                client.abort_transaction((&topic, partition), producer).await?;
                emitln(&format!("Aborted producer {}'s transaction in {topic}-{partition}.", producer.0))
            }
        }
    })
}

async fn list(client: &mut Client, output: Output) -> CliResult {
    let listed = client.list_transactions().await?;
    if output == Output::Json {
        let items: Vec<Value> = listed
            .iter()
            .map(|t| {
                json!({"transactional_id": t.transactional_id, "coordinator": t.coordinator,
                            "producer_id": t.producer_id, "state": t.state})
            })
            .collect();
        return emit_json(&Value::Array(items));
    }
    let rows: Vec<Vec<String>> = listed
        .into_iter()
        .map(|t| vec![t.transactional_id, t.coordinator.to_string(), t.producer_id.to_string(), t.state])
        .collect();
    emit(&table(&["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"], &rows))
}

async fn describe(client: &mut Client, id: &str, output: Output) -> CliResult {
    let t = client.describe_transaction(id).await?;
    let partitions: Vec<String> = t.partitions.iter().map(|(topic, p)| format!("{topic}-{p}")).collect();
    if output == Output::Json {
        return emit_json(&json!({
            "coordinator": t.coordinator, "transactional_id": t.transactional_id, "producer_id": t.producer_id,
            "producer_epoch": t.producer_epoch, "state": t.state, "start_time_ms": t.start_time_ms,
            "timeout_ms": t.timeout_ms, "partitions": partitions,
        }));
    }
    let started = if t.start_time_ms >= 0 { format_ms(t.start_time_ms) } else { "-".into() };
    let row = vec![
        t.coordinator.to_string(),
        t.transactional_id,
        t.producer_id.to_string(),
        t.producer_epoch.to_string(),
        t.state,
        started,
        t.timeout_ms.to_string(),
        if partitions.is_empty() { "-".into() } else { partitions.join(",") },
    ];
    let header =
        ["COORDINATOR", "TRANSACTIONAL-ID", "PRODUCER-ID", "EPOCH", "STATE", "STARTED", "TIMEOUT-MS", "PARTITIONS"];
    emit(&table(&header, &[row]))
}

fn print_producers(topic: &str, partitions: &[(i32, Vec<ProducerDescription>)], output: Output) -> CliResult {
    if output == Output::Json {
        let items: Vec<Value> = partitions
            .iter()
            .flat_map(|(p, producers)| producers.iter().map(move |d| (p, d)))
            .map(|(p, d)| {
                json!({"topic": topic, "partition": p, "producer_id": d.producer_id,
                                 "producer_epoch": d.producer_epoch, "last_sequence": d.last_sequence,
                                 "last_timestamp": d.last_timestamp, "coordinator_epoch": d.coordinator_epoch,
                                 "current_transaction_start_offset": d.current_txn_start_offset})
            })
            .collect();
        return emit_json(&Value::Array(items));
    }
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .flat_map(|(p, producers)| producers.iter().map(move |d| (p, d)))
        .map(|(p, d)| {
            vec![
                format!("{topic}-{p}"),
                d.producer_id.to_string(),
                d.producer_epoch.to_string(),
                d.last_sequence.to_string(),
                if d.last_timestamp >= 0 { format_ms(d.last_timestamp) } else { "-".into() },
                d.coordinator_epoch.to_string(),
                d.current_txn_start_offset.to_string(),
            ]
        })
        .collect();
    let header = [
        "PARTITION",
        "PRODUCER-ID",
        "EPOCH",
        "LAST-SEQUENCE",
        "LAST-TIMESTAMP",
        "COORDINATOR-EPOCH",
        "TXN-START-OFFSET",
    ];
    emit(&table(&header, &rows))
}

/// Open transactions (a start offset) whose producer wrote nothing for longer than the
/// maximum transaction timeout: their coordinator should have aborted them by then.
async fn find_hanging(client: &mut Client, topic: &str, max_timeout_ms: i64, output: Output) -> CliResult {
    let count = client.topic(topic).await?.partitions.len() as i32;
    let now = now_ms();
    let limit = max_timeout_ms.max(0);
    let mut hanging = Vec::new();
    for p in 0..count {
        let producers = client.describe_producers(topic, p, None).await?;
        let old: Vec<ProducerDescription> = producers
            .into_iter()
            .filter(|d| d.current_txn_start_offset >= 0 && now - d.last_timestamp > limit)
            .collect();
        if !old.is_empty() {
            hanging.push((p, old));
        }
    }
    print_producers(topic, &hanging, output)
}

/// The producer whose open transaction in the partition starts at `offset`.
async fn by_start_offset(client: &mut Client, topic: &str, partition: i32, offset: i64) -> CliResult<(i64, i16, i32)> {
    let producers = client.describe_producers(topic, partition, None).await?;
    let found = producers.into_iter().find(|d| d.current_txn_start_offset == offset).ok_or_else(|| {
        failed(format!("no open transaction starts at offset {offset} in {topic}-{partition} (see describe-producers)"))
    })?;
    let epoch = i16::try_from(found.producer_epoch).map_err(|_| failed("producer epoch out of range"))?;
    Ok((found.producer_id, epoch, found.coordinator_epoch))
}
