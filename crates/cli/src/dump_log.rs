//! `gregor dump-log`: reads segment (`.log`), offset index (`.index`) and time index
//! (`.timeindex`) files offline, like `kafka-dump-log.sh`, verifying batch CRCs, the log's
//! tail and every index entry against its segment.
//!
//! Problems (a bad CRC, a torn or corrupt tail, an index entry that points nowhere) are
//! printed where found; the command then exits with status 1 and one sentence that counts
//! them, so scripts can check a data directory with `gregor dump-log DIR`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::Args;
use gregor_protocol::kafka_protocol::records::{Record, RecordBatchDecoder, TimestampType};
use gregor_protocol::record_batch::{batch_size, CompressionType, RecordBatchHeader};

use crate::common::{emit, failed, finish, CliResult};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor dump-log gregor-data/orders-0/00000000000000000000.log
  gregor dump-log gregor-data/orders-0 --print-data-log
  gregor dump-log gregor-data/orders-0/00000000000000000000.index")]
pub(crate) struct DumpLogArgs {
    /// Segment, index or time index files, or partition directories (all three kinds inside).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print every record with its key and value (implies --deep-iteration).
    #[arg(long)]
    print_data_log: bool,
    /// Print every record's offset, timestamp and sizes, decompressing batches.
    #[arg(long)]
    deep_iteration: bool,
}

/// One batch found in a segment.
#[derive(Debug, Clone, Copy)]
struct BatchPos {
    position: usize,
    base_offset: i64,
    last_offset: i64,
}

/// What dumping found wrong.
#[derive(Debug, Default)]
struct Report {
    out: String,
    problems: Vec<String>,
}

impl Report {
    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }
    fn problem(&mut self, text: String) {
        self.line(&format!("PROBLEM: {text}"));
        self.problems.push(text);
    }
    fn flush(&mut self) -> CliResult {
        let text = std::mem::take(&mut self.out);
        emit(&text)
    }
}

pub(crate) fn run(args: DumpLogArgs) -> Result<(), String> {
    finish(dump(&args))
}

fn dump(args: &DumpLogArgs) -> CliResult {
    let mut files = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?;
            let mut inside: Vec<PathBuf> =
                entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| kind(p).is_some()).collect();
            // Per segment: the log first, then its indexes.
            inside.sort_by_key(|p| (p.file_stem().map(ToOwned::to_owned), kind(p) != Some("log"), p.clone()));
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    let mut report = Report::default();
    for file in &files {
        report.line(&format!("Dumping {}", file.display()));
        match kind(file) {
            Some("log") => {
                dump_segment(file, args.print_data_log || args.deep_iteration, args.print_data_log, &mut report)?
            }
            Some("index") => dump_offset_index(file, &mut report)?,
            Some("timeindex") => dump_time_index(file, &mut report)?,
            _ => return Err(failed(format!("cannot dump {}: not a .log, .index or .timeindex file", file.display()))),
        }
        report.flush()?;
    }
    match report.problems.len() {
        0 => Ok(()),
        1 => Err(failed(report.problems.remove(0))),
        n => Err(failed(format!("{n} problems found, the first: {}", report.problems[0]))),
    }
}

fn kind(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()? {
        "log" => Some("log"),
        "index" => Some("index"),
        "timeindex" => Some("timeindex"),
        _ => None,
    }
}

fn read(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| failed(format!("cannot read {}: {e}", path.display())))
}

/// The segment base offset from a Kafka file name (`00000000000000000042.log`).
fn base_offset_of(path: &Path) -> i64 {
    path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn codec_name(c: Option<CompressionType>) -> &'static str {
    match c {
        Some(CompressionType::None) => "none",
        Some(CompressionType::Gzip) => "gzip",
        Some(CompressionType::Snappy) => "snappy",
        Some(CompressionType::Lz4) => "lz4",
        Some(CompressionType::Zstd) => "zstd",
        None => "unknown",
    }
}

/// Walks the batches of a segment; reports CRC failures and a torn or corrupt tail.
fn scan_segment(
    bytes: &[u8],
    name: &str,
    mut each: impl FnMut(usize, &RecordBatchHeader<'_>, &mut Report),
    report: &mut Report,
) -> Vec<BatchPos> {
    let mut batches = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let torn = match batch_size(rest) {
            None => Some(format!("{} bytes, shorter than a batch length prefix", rest.len())),
            Some(size) if size > rest.len() => {
                Some(format!("a batch of {size} bytes with only {} bytes left", rest.len()))
            }
            Some(_) => None,
        };
        if let Some(why) = torn {
            report.problem(format!("{name} has a torn tail at position {position}: {why}"));
            break;
        }
        let batch = match RecordBatchHeader::parse(rest) {
            Ok(b) => b,
            Err(e) => {
                report.problem(format!("{name} has a corrupt batch at position {position}: {e}"));
                break;
            }
        };
        if !batch.is_crc_valid() {
            report.problem(format!(
                "{name}: the batch at position {position} (offset {}) fails its CRC",
                batch.base_offset()
            ));
        }
        if let Some(prev) = batches.last().map(|b: &BatchPos| b.last_offset) {
            if batch.base_offset() <= prev {
                report.problem(format!(
                    "{name}: offsets go back at position {position} ({} after {prev})",
                    batch.base_offset()
                ));
            }
        }
        each(position, &batch, report);
        batches.push(BatchPos { position, base_offset: batch.base_offset(), last_offset: batch.last_offset() });
        position += batch.size();
    }
    batches
}

fn dump_segment(path: &Path, deep: bool, data: bool, report: &mut Report) -> CliResult {
    let bytes = read(path)?;
    let name = path.display().to_string();
    report.line(&format!("Log starting offset: {}", base_offset_of(path)));
    let shared = Bytes::from(bytes);
    let print = |position: usize, b: &RecordBatchHeader<'_>, report: &mut Report| {
        report.line(&batch_line(position, b));
        if deep {
            let mut slice = shared.slice(position..position + b.size());
            match RecordBatchDecoder::decode(&mut slice) {
                Ok(set) => set.records.iter().for_each(|r| report.line(&record_line(r, b.base_sequence() >= 0, data))),
                Err(e) => report
                    .problem(format!("{name}: cannot decode the records of the batch at position {position}: {e}")),
            }
        }
    };
    let batches = scan_segment(&shared, &name, print, report);
    report.line(&format!("{} batches, {} bytes", batches.len(), shared.len()));
    Ok(())
}

fn batch_line(position: usize, b: &RecordBatchHeader<'_>) -> String {
    let time_type = if b.is_log_append_time() { "LogAppendTime" } else { "CreateTime" };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} \
         partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {position} {time_type}: {} size: {} \
         magic: {} compresscodec: {} crc: {} isvalid: {}",
        b.base_offset(),
        b.last_offset(),
        b.records_count(),
        b.base_sequence(),
        b.last_sequence(),
        b.producer_id(),
        b.producer_epoch(),
        b.partition_leader_epoch(),
        b.is_transactional(),
        b.is_control(),
        b.max_timestamp(),
        b.size(),
        b.magic(),
        codec_name(b.compression()),
        b.crc(),
        b.is_crc_valid(),
    )
}

fn record_line(r: &Record, sequenced: bool, data: bool) -> String {
    let time_type = if r.timestamp_type == TimestampType::LogAppend { "LogAppendTime" } else { "CreateTime" };
    let size = |b: &Option<Bytes>| b.as_ref().map_or(-1, |b| i64::try_from(b.len()).unwrap_or(i64::MAX));
    let keys: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
    let mut line = format!(
        "| offset: {} {time_type}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
        r.offset,
        r.timestamp,
        size(&r.key),
        size(&r.value),
        if sequenced { r.sequence } else { -1 },
        keys.join(",")
    );
    if r.control {
        line.push_str(" isControl: true");
    }
    if data {
        let text = |b: &Option<Bytes>| b.as_ref().map_or("null".into(), |b| String::from_utf8_lossy(b).into_owned());
        line.push_str(&format!(" key: {} payload: {}", text(&r.key), text(&r.value)));
    }
    line
}

/// The batches of the `.log` next to an index file, if it is there.
fn sibling_batches(path: &Path, report: &mut Report) -> CliResult<Option<Vec<BatchPos>>> {
    let log = path.with_extension("log");
    if !log.exists() {
        report.line(&format!("(no {} to check the entries against)", log.display()));
        return Ok(None);
    }
    let bytes = read(&log)?;
    let mut quiet = Report::default();
    Ok(Some(scan_segment(&bytes, &log.display().to_string(), |_, _, _| {}, &mut quiet)))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn dump_offset_index(path: &Path, report: &mut Report) -> CliResult {
    let bytes = read(path)?;
    let name = path.display().to_string();
    let base = base_offset_of(path);
    if bytes.len() % 8 != 0 {
        report.problem(format!("{name} is {} bytes, not a whole number of 8-byte entries", bytes.len()));
    }
    let batches = sibling_batches(path, report)?;
    let mut previous: Option<(i64, u32)> = None;
    for (i, entry) in bytes.chunks_exact(8).enumerate() {
        let (relative, position) = (be_u32(&entry[..4]), be_u32(&entry[4..]));
        if i > 0 && relative == 0 && position == 0 {
            report.line("(the rest of the file is unused, pre-allocated space)");
            break;
        }
        let offset = base + i64::from(relative);
        report.line(&format!("offset: {offset} position: {position}"));
        if let Some((prev_offset, prev_position)) = previous {
            if offset <= prev_offset || position <= prev_position {
                report.problem(format!("{name}: entry {i} (offset {offset}, position {position}) does not increase"));
            }
        }
        if let Some(batches) = &batches {
            let at = usize::try_from(position).unwrap_or(usize::MAX);
            match batches.iter().find(|b| b.position == at) {
                Some(b) if b.last_offset == offset || b.base_offset == offset => {}
                Some(b) => report.problem(format!(
                    "{name}: entry {i} says offset {offset} at position {position}, but the batch there holds {}-{}",
                    b.base_offset, b.last_offset
                )),
                None => {
                    report.problem(format!("{name}: entry {i} points at position {position}, where no batch starts"))
                }
            }
        }
        previous = Some((offset, position));
    }
    Ok(())
}

fn dump_time_index(path: &Path, report: &mut Report) -> CliResult {
    let bytes = read(path)?;
    let name = path.display().to_string();
    let base = base_offset_of(path);
    if bytes.len() % 12 != 0 {
        report.problem(format!("{name} is {} bytes, not a whole number of 12-byte entries", bytes.len()));
    }
    let batches = sibling_batches(path, report)?;
    let mut previous: Option<(i64, i64)> = None;
    for (i, entry) in bytes.chunks_exact(12).enumerate() {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&entry[..8]);
        let (timestamp, relative) = (i64::from_be_bytes(ts), be_u32(&entry[8..]));
        if i > 0 && timestamp == 0 && relative == 0 {
            report.line("(the rest of the file is unused, pre-allocated space)");
            break;
        }
        let offset = base + i64::from(relative);
        report.line(&format!("timestamp: {timestamp} offset: {offset}"));
        if let Some((prev_ts, prev_offset)) = previous {
            if timestamp < prev_ts || offset < prev_offset {
                report.problem(format!("{name}: entry {i} (timestamp {timestamp}, offset {offset}) goes back"));
            }
        }
        if let Some(batches) = &batches {
            if !batches.iter().any(|b| (b.base_offset..=b.last_offset).contains(&offset)) {
                report.problem(format!("{name}: entry {i} names offset {offset}, which no batch of the segment holds"));
            }
        }
        previous = Some((timestamp, offset));
    }
    Ok(())
}
