//! `gregor consume`: prints records of topics (kafka-console-consumer.sh), from a chosen
//! start (earliest, latest, an offset, the last N, a point in time), following new data
//! until Ctrl-C, `--max-messages` or `--timeout`.
//!
//! Without `--group` partitions are read by assignment. With `--group` the group's
//! committed offsets are the start and consumed offsets are committed periodically and
//! on exit, as a standalone consumer (generation -1): no group membership is joined, so
//! this works while the group has no other active member, and is refused otherwise.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use gregor_client::{error_name, Client, FetchOptions, FetchPosition};

use crate::common::{connect, emit, failed, parse_datetime, run_async, usage, CliResult, ConnectArgs, Global};
use crate::consume_format::Format;

const COMMIT_INTERVAL: Duration = Duration::from_secs(5);
const OFFSET_OUT_OF_RANGE: i16 = 1;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor consume orders --from-beginning
  gregor consume orders --offset -10 --template '{partition}:{offset} {key}={value}'
  gregor consume orders --offset @2026-11-21T10:00:00Z --max-messages 100 --format json
  gregor consume orders --group billing --timeout 5000")]
pub(crate) struct ConsumeArgs {
    /// Topics to read.
    #[arg(required = true)]
    topics: Vec<String>,
    /// Start at the earliest offset (same as --offset earliest).
    #[arg(long)]
    from_beginning: bool,
    /// Where to start in every partition: earliest, latest, an offset N, -N (the last N
    /// records), or @DATETIME (the first record at or after 2026-11-21T10:00:00Z).
    #[arg(long, value_name = "SPEC", allow_hyphen_values = true)]
    offset: Option<String>,
    /// Read only this partition.
    #[arg(long, value_name = "N")]
    partition: Option<i32>,
    /// Start from this group's committed offsets and commit what was consumed.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Exit after this many records.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Exit when no record arrived for this many milliseconds.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// read_committed skips records of aborted transactions.
    #[arg(long, default_value = "read_uncommitted", value_parser = ["read_uncommitted", "read_committed"])]
    isolation_level: String,
    /// Output: plain (the value) or json (one object per line).
    #[arg(long, default_value = "plain", value_parser = ["plain", "json"])]
    format: String,
    /// Output template with {topic} {partition} {offset} {timestamp} (ms) {datetime}
    /// (ISO-8601 UTC) {key} {value} {headers}; \t and \n are understood. Overrides --format.
    #[arg(long, value_name = "TEMPLATE")]
    template: Option<String>,
}

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Earliest,
    Latest,
    Offset(i64),
    LastN(i64),
    Time(i64),
}

fn parse_start(spec: &str) -> CliResult<Start> {
    let bad = || usage(format!("--offset expects earliest, latest, N, -N or @DATETIME, got '{spec}'"));
    match spec {
        "earliest" | "beginning" => Ok(Start::Earliest),
        "latest" | "end" => Ok(Start::Latest),
        _ if spec.starts_with('@') => {
            let when = &spec[1..];
            match when.parse::<i64>() {
                Ok(ms) => Ok(Start::Time(ms)),
                Err(_) => parse_datetime(when).map(Start::Time),
            }
        }
        _ if spec.starts_with('-') => spec[1..].parse::<i64>().map(Start::LastN).map_err(|_| bad()),
        _ => spec.parse::<i64>().map(Start::Offset).map_err(|_| bad()),
    }
}

/// One partition being read.
#[derive(Debug, Clone)]
struct Cursor {
    topic: String,
    partition: i32,
    offset: i64,
    committed: Option<i64>,
}

pub(crate) fn run(args: ConsumeArgs, global: &Global) -> Result<(), String> {
    run_async(consume(args, global.conn.clone()))
}

async fn consume(args: ConsumeArgs, conn: ConnectArgs) -> CliResult {
    let start = match (&args.offset, args.from_beginning) {
        (Some(spec), _) => Some(parse_start(spec)?),
        (None, true) => Some(Start::Earliest),
        (None, false) => None,
    };
    let format = Format::new(&args.format, args.template.as_deref());
    let isolation = i8::from(args.isolation_level == "read_committed");
    let mut client = connect(&conn).await?;
    if let Some(group) = &args.group {
        let description = client.describe_group(group).await?;
        if description.is_active() {
            return Err(failed(format!(
                "group '{group}' has active members (state {}); gregor consume commits as a standalone consumer and needs the group idle",
                description.state
            )));
        }
    }
    let mut cursors = Vec::new();
    for topic in &args.topics {
        cursors.extend(start_cursors(&mut client, topic, &args, start, isolation).await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    drop(tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    }));
    let options = FetchOptions { isolation_level: isolation, ..FetchOptions::default() };
    let result = poll_loop(&mut client, &mut cursors, &args, &format, &options, &stop).await;
    let committed = commit(&mut client, args.group.as_deref(), &mut cursors).await;
    let count = result?;
    committed?;
    eprintln!("Processed a total of {count} messages");
    Ok(())
}

async fn start_cursors(
    client: &mut Client,
    topic: &str,
    args: &ConsumeArgs,
    start: Option<Start>,
    isolation: i8,
) -> CliResult<Vec<Cursor>> {
    let info = client.topic(topic).await?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) if info.partitions.iter().any(|x| x.partition == p) => vec![p],
        Some(p) => return Err(usage(format!("topic '{topic}' has no partition {p}"))),
        None => info.partitions.iter().map(|p| p.partition).collect(),
    };
    let marks = client.watermarks(topic, &partitions).await?;
    let committed: BTreeMap<i32, i64> = match &args.group {
        Some(group) => client
            .committed_offsets(group, Some(&[(topic.to_owned(), partitions.clone())]))
            .await?
            .into_iter()
            .map(|c| (c.partition, c.offset))
            .collect(),
        None => BTreeMap::new(),
    };
    let times: BTreeMap<i32, i64> = match start {
        Some(Start::Time(ms)) => {
            let q: Vec<(i32, i64)> = partitions.iter().map(|&p| (p, ms)).collect();
            client.list_offsets(topic, &q, isolation).await?.into_iter().map(|(p, o)| (p, o.offset)).collect()
        }
        _ => BTreeMap::new(),
    };
    let mut cursors = Vec::new();
    for p in partitions {
        let (log_start, log_end) = marks.get(&p).copied().unwrap_or((0, 0));
        let offset = match (start, committed.get(&p)) {
            (None, Some(&c)) => c,
            (None | Some(Start::Latest), _) => log_end,
            (Some(Start::Earliest), _) => log_start,
            (Some(Start::Offset(n)), _) => n,
            (Some(Start::LastN(n)), _) => (log_end - n).max(log_start),
            (Some(Start::Time(_)), _) => times.get(&p).copied().filter(|o| *o >= 0).unwrap_or(log_end),
        };
        cursors.push(Cursor { topic: topic.to_owned(), partition: p, offset, committed: committed.get(&p).copied() });
    }
    Ok(cursors)
}

async fn poll_loop(
    client: &mut Client,
    cursors: &mut [Cursor],
    args: &ConsumeArgs,
    format: &Format,
    options: &FetchOptions,
    stop: &AtomicBool,
) -> CliResult<u64> {
    let mut count: u64 = 0;
    let mut last_message = Instant::now();
    let mut last_commit = Instant::now();
    let limit = args.max_messages.unwrap_or(u64::MAX);
    while count < limit && !stop.load(Ordering::SeqCst) {
        if let Some(ms) = args.timeout {
            if last_message.elapsed() >= Duration::from_millis(ms) {
                break;
            }
        }
        let positions: Vec<FetchPosition> = cursors
            .iter()
            .map(|c| FetchPosition { topic: c.topic.clone(), partition: c.partition, offset: c.offset })
            .collect();
        let mut fetch_options = *options;
        if let Some(ms) = args.timeout {
            let left = Duration::from_millis(ms).saturating_sub(last_message.elapsed());
            fetch_options.max_wait_ms =
                fetch_options.max_wait_ms.min(i32::try_from(left.as_millis()).unwrap_or(i32::MAX));
        }
        for fetched in client.fetch(&positions, &fetch_options).await? {
            let Some(cursor) =
                cursors.iter_mut().find(|c| c.topic == fetched.topic && c.partition == fetched.partition)
            else {
                continue;
            };
            if fetched.error_code == OFFSET_OUT_OF_RANGE {
                return Err(failed(format!(
                    "offset {} is out of range for {}-{} (log start {}, log end {})",
                    cursor.offset, cursor.topic, cursor.partition, fetched.log_start_offset, fetched.high_watermark
                )));
            }
            if fetched.error_code != 0 {
                retry_later(client, &cursor.topic, fetched.error_code).await?;
                continue;
            }
            let mut out = String::new();
            for record in &fetched.records {
                if count >= limit {
                    break;
                }
                out.push_str(&format.render(&cursor.topic, cursor.partition, record));
                cursor.offset = record.offset + 1;
                count += 1;
                last_message = Instant::now();
            }
            if count < limit {
                if let Some(next) = fetched.next_offset {
                    cursor.offset = cursor.offset.max(next);
                }
            }
            emit(&out)?;
        }
        if args.group.is_some() && last_commit.elapsed() >= COMMIT_INTERVAL {
            commit(client, args.group.as_deref(), cursors).await?;
            last_commit = Instant::now();
        }
    }
    Ok(count)
}

/// A retriable partition error (leader moved, topic being created): refresh metadata and
/// pause briefly; anything else ends the command.
async fn retry_later(client: &mut Client, topic: &str, code: i16) -> CliResult {
    const RETRIABLE: [i16; 5] = [3, 5, 6, 9, 13];
    if !RETRIABLE.contains(&code) {
        return Err(failed(format!("cannot read topic '{topic}': {}", error_name(code))));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = client.refresh(Some(&[topic.to_owned()])).await?;
    Ok(())
}

async fn commit(client: &mut Client, group: Option<&str>, cursors: &mut [Cursor]) -> CliResult {
    let Some(group) = group else { return Ok(()) };
    let changed: Vec<(String, i32, i64)> = cursors
        .iter()
        .filter(|c| c.committed != Some(c.offset))
        .map(|c| (c.topic.clone(), c.partition, c.offset))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    client.commit_offsets(group, &changed).await?;
    for c in cursors.iter_mut() {
        c.committed = Some(c.offset);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_specs_parse() {
        assert_eq!(parse_start("earliest").unwrap(), Start::Earliest);
        assert_eq!(parse_start("latest").unwrap(), Start::Latest);
        assert_eq!(parse_start("42").unwrap(), Start::Offset(42));
        assert_eq!(parse_start("-5").unwrap(), Start::LastN(5));
        assert_eq!(parse_start("@1000").unwrap(), Start::Time(1000));
        assert_eq!(parse_start("@1970-01-01T00:00:01Z").unwrap(), Start::Time(1000));
        assert!(parse_start("soon").is_err());
        assert!(parse_start("@never").is_err());
    }
}
