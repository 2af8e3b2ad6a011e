//! `gregor produce`: lines from stdin or a file become records (kafka-console-producer.sh).
//!
//! Lines are read on a thread and batched: a batch takes lines until none arrives for
//! `--linger-ms` or it holds `--batch-size`, so typing sends each line at once and a
//! file goes out in large batches.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::Args;
use gregor_client::{parse_compression, partition_for_key, Client, ProduceOptions, ProduceRecord};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::common::{connect, emitln, failed, key_value, now_ms, run_async, usage, CliResult, ConnectArgs, Global};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  echo 'hello' | gregor produce orders
  gregor produce orders --key-separator : --header source=cli < lines.txt
  gregor produce orders --file events.jsonl --json --compression zstd
  JSON lines look like {\"key\":\"user-1\",\"value\":\"...\",\"headers\":{\"h\":\"v\"},\"partition\":0}")]
pub(crate) struct ProduceArgs {
    /// Topic to write to (must exist).
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Split each line into key and value at the first SEP (Kafka's parse.key/key.separator).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// A header added to every record, repeatable: --header source=cli
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Write every record to this partition (default: murmur2 of the key like the Java
    /// client; records without a key go to one partition per batch, round-robin).
    #[arg(long, value_name = "N")]
    partition: Option<i32>,
    /// Acknowledgement required: 0 (none), 1 (leader) or all.
    #[arg(long, default_value = "all", value_parser = ["0", "1", "all", "-1"])]
    acks: String,
    /// Batch compression.
    #[arg(long, default_value = "none", value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: String,
    /// Each line is a JSON object {"key":..,"value":..,"headers":{..},"partition":..}.
    #[arg(long)]
    json: bool,
    /// Most records per batch.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    batch_size: usize,
    /// How long to wait for more lines before sending a batch (Kafka's linger.ms).
    #[arg(long, value_name = "MS", default_value_t = 10)]
    linger_ms: u64,
}

/// One input line, parsed.
#[derive(Debug)]
struct Parsed {
    record: ProduceRecord,
    partition: Option<i32>,
}

pub(crate) fn run(args: ProduceArgs, global: &Global) -> Result<(), String> {
    run_async(produce(args, global.conn.clone()))
}

async fn produce(args: ProduceArgs, conn: ConnectArgs) -> CliResult {
    let headers = args.headers.iter().map(|h| key_value(h, "--header")).collect::<CliResult<Vec<_>>>()?;
    let options = ProduceOptions {
        acks: if args.acks == "all" { -1 } else { args.acks.parse().unwrap_or(-1) },
        compression: parse_compression(&args.compression).ok_or_else(|| usage("unknown --compression"))?,
        timeout_ms: 30_000,
    };
    let mut client = connect(&conn).await?;
    let partitions = i32::try_from(client.topic(&args.topic).await?.partitions.len()).unwrap_or(i32::MAX);
    if let Some(p) = args.partition.filter(|p| !(0..partitions).contains(p)) {
        return Err(usage(format!("topic '{}' has no partition {p} (it has {partitions})", args.topic)));
    }
    let mut lines = spawn_reader(args.file.clone())?;
    let progress = progress_bar(args.file.as_deref());
    let mut sent: u64 = 0;
    let mut line_no: u64 = 0;
    let mut sticky: i32 = 0;
    while let Some(first) = lines.recv().await {
        let mut batch = vec![first];
        let linger = std::time::Duration::from_millis(args.linger_ms);
        while batch.len() < args.batch_size.max(1) {
            match tokio::time::timeout(linger, lines.recv()).await {
                Ok(Some(line)) => batch.push(line),
                Ok(None) | Err(_) => break,
            }
        }
        let mut by_partition: BTreeMap<i32, Vec<ProduceRecord>> = BTreeMap::new();
        let mut bytes = 0;
        for line in batch {
            let line = line?;
            line_no += 1;
            bytes += line.len() as u64 + 1;
            if line.is_empty() && !args.json {
                continue;
            }
            let parsed = parse_line(&line, line_no, &args, &headers)?;
            let partition = parsed.partition.or(args.partition).unwrap_or_else(|| match &parsed.record.key {
                Some(key) => partition_for_key(key, partitions),
                None => sticky,
            });
            by_partition.entry(partition).or_default().push(parsed.record);
        }
        sticky = (sticky + 1) % partitions.max(1);
        sent += send(&mut client, &args.topic, by_partition, &options, sent).await?;
        if let Some(bar) = &progress {
            bar.inc(bytes);
            let rate = sent as f64 / bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!("{sent} messages ({rate:.0} msg/s)"));
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    emitln(&format!("{sent} messages written to {}", args.topic))
}

async fn send(
    client: &mut Client,
    topic: &str,
    by_partition: BTreeMap<i32, Vec<ProduceRecord>>,
    options: &ProduceOptions,
    sent_before: u64,
) -> CliResult<u64> {
    let mut sent = 0;
    for (partition, records) in by_partition {
        if let Err(e) = client.produce(topic, partition, &records, options).await {
            let total = sent_before + sent;
            return Err(failed(format!("{e} (after {total} messages written)")));
        }
        sent += records.len() as u64;
    }
    Ok(sent)
}

/// A progress bar (bytes of the file, rate, messages) on stderr, only when reading a
/// file and stderr is a terminal.
fn progress_bar(file: Option<&Path>) -> Option<ProgressBar> {
    let size = std::fs::metadata(file?).ok()?.len();
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let style = ProgressStyle::with_template(
        "{bar:30.cyan/blue} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .ok()?;
    Some(ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr()).with_style(style))
}

/// Reads lines on a thread into a channel; a read error ends the stream.
fn spawn_reader(file: Option<PathBuf>) -> CliResult<mpsc::Receiver<CliResult<String>>> {
    let reader: Box<dyn BufRead + Send> = match &file {
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|e| failed(format!("cannot open {}: {e}", path.display())))?;
            Box::new(std::io::BufReader::new(f))
        }
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let (tx, rx) = mpsc::channel(10_000);
    // A plain thread, not spawn_blocking: the runtime must not wait for a stdin read on exit.
    drop(std::thread::spawn(move || {
        for line in reader.lines() {
            let item = line
                .map(|l| l.strip_suffix('\r').map(str::to_owned).unwrap_or(l))
                .map_err(|e| failed(format!("cannot read input: {e}")));
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                break;
            }
        }
    }));
    Ok(rx)
}

fn parse_line(line: &str, line_no: u64, args: &ProduceArgs, headers: &[(String, String)]) -> CliResult<Parsed> {
    let mut parsed = if args.json {
        parse_json(line, line_no)?
    } else {
        let (key, value) = match &args.key_separator {
            Some(sep) => {
                let (k, v) = line
                    .split_once(sep.as_str())
                    .ok_or_else(|| failed(format!("line {line_no} has no key separator '{sep}'")))?;
                (Some(Bytes::from(k.to_owned())), v)
            }
            None => (None, line),
        };
        let record =
            ProduceRecord { key, value: Some(Bytes::from(value.to_owned())), headers: Vec::new(), timestamp: 0 };
        Parsed { record, partition: None }
    };
    parsed.record.timestamp = now_ms();
    for (k, v) in headers {
        parsed.record.headers.push((k.clone(), Some(Bytes::from(v.clone()))));
    }
    Ok(parsed)
}

/// A JSON value as record bytes: strings as-is, null as no bytes, anything else as JSON text.
fn json_bytes(value: Option<&Value>) -> Option<Bytes> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Bytes::from(s.clone())),
        Some(other) => Some(Bytes::from(other.to_string())),
    }
}

fn parse_json(line: &str, line_no: u64) -> CliResult<Parsed> {
    let bad = |why: &str| failed(format!("line {line_no} is not a record object: {why}"));
    let value: Value = serde_json::from_str(line).map_err(|e| bad(&e.to_string()))?;
    let obj = value.as_object().ok_or_else(|| bad("expected a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| !matches!(k.as_str(), "key" | "value" | "headers" | "partition")) {
        return Err(bad(&format!("unknown field '{unknown}'")));
    }
    let mut headers = Vec::new();
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                headers.push((k.clone(), json_bytes(Some(v))));
            }
        }
        Some(_) => return Err(bad("\"headers\" must be an object")),
    }
    let partition = match obj.get("partition") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64().and_then(|p| i32::try_from(p).ok()).ok_or_else(|| bad("\"partition\" must be an integer"))?,
        ),
    };
    let record =
        ProduceRecord { key: json_bytes(obj.get("key")), value: json_bytes(obj.get("value")), headers, timestamp: 0 };
    Ok(Parsed { record, partition })
}
