//! `gregor-bench`: a Kafka load tool on librdkafka (the client most users run), for Gregor
//! or any other broker reachable at `--bootstrap-server`.
//!
//! ```text
//!  produce     msgs/s and MB/s for a message size, acks, compression and partition count
//!  consume     reads the topic back from the beginning: msgs/s and MB/s
//!  latency     end-to-end p50/p99/p99.9/max at a fixed rate (send time stamped in the payload)
//!  partitions  creates N partitions, writes one message to each, reports time and broker RSS
//! ```
//!
//! Every run prints one human line, or one JSON object with `--json`. With `--pid` the
//! broker's CPU seconds and memory (from `/proc`) over the run are added.
#![forbid(unsafe_code)]

mod common;
mod consume;
mod latency;
mod partitions;
mod produce;
mod report;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::common::{parse_config_pair, parse_seconds, Acks, Common, Compression};
use crate::report::BrokerProbe;

#[derive(Debug, Parser)]
#[command(
    name = "gregor-bench",
    version,
    about = "Kafka load tool on librdkafka: produce, consume, latency, partitions"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Broker address(es), comma separated.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    bootstrap_server: String,
    /// Print one JSON object instead of the human line.
    #[arg(long, global = true)]
    json: bool,
    /// Broker process id: adds its CPU seconds and RSS (from /proc) over the run.
    #[arg(long, global = true)]
    pid: Option<u32>,
    /// Extra librdkafka setting for every client, repeatable: --set linger.ms=10.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_config_pair)]
    settings: Vec<(String, String)>,
    /// Hard limit on the whole run in seconds; the tool gives up with an error after it.
    #[arg(long, global = true, default_value = "600", value_parser = parse_seconds)]
    timeout: f64,
}

/// Options shared by the producing workloads.
#[derive(Debug, Args, Clone)]
struct ProduceShape {
    /// Topic to use; created when missing.
    #[arg(long, default_value = "gregor-bench")]
    topic: String,
    /// Message value size in bytes.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    size: u32,
    /// Producer acks: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: Acks,
    /// Producer compression codec.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// Partitions of the topic when it is created.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    partitions: i32,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Producer throughput: msgs/s and MB/s until all messages are acknowledged.
    Produce {
        #[command(flatten)]
        shape: ProduceShape,
        /// Number of messages to send (default 1,000,000 unless --seconds is given).
        #[arg(long, conflicts_with = "seconds", value_parser = clap::value_parser!(u64).range(1..))]
        messages: Option<u64>,
        /// Send for this many seconds instead of a message count.
        #[arg(long, value_parser = parse_seconds)]
        seconds: Option<f64>,
    },
    /// Consumer throughput: reads the topic from the beginning up to its end at start.
    Consume {
        /// Topic to read (written by `produce`).
        #[arg(long, default_value = "gregor-bench")]
        topic: String,
        /// Stop after this many messages.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        messages: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, value_parser = parse_seconds)]
        seconds: Option<f64>,
    },
    /// End-to-end latency percentiles at a fixed send rate.
    Latency {
        #[command(flatten)]
        shape: ProduceShape,
        /// Target send rate in messages per second.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=5_000_000))]
        rate: u32,
        /// Measured duration in seconds (after the warm-up).
        #[arg(long, default_value = "10", value_parser = parse_seconds)]
        seconds: f64,
        /// Warm-up seconds whose messages are sent but not measured.
        #[arg(long, default_value = "1", value_parser = parse_seconds)]
        warmup: f64,
    },
    /// Many partitions: creation time, one message to each, broker RSS with --pid.
    Partitions {
        /// Topic to create; it must not exist yet.
        #[arg(long, default_value = "gregor-bench-partitions")]
        topic: String,
        /// Number of partitions to create.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i32).range(1..=100_000))]
        count: i32,
    },
}

fn run(cli: Cli) -> anyhow::Result<report::Report> {
    let global = cli.global;
    let common = Common::new(global.bootstrap_server, global.settings, global.timeout);
    let probe = global.pid.map(BrokerProbe::new).transpose()?;
    let before = probe.as_ref().map(BrokerProbe::sample).transpose()?;
    let mut report = match cli.command {
        Command::Produce { shape, messages, seconds } => {
            let stop = produce::Stop::from_args(messages, seconds);
            produce::run(&common, &shape.into(), stop)?
        }
        Command::Consume { topic, messages, seconds } => consume::run(&common, &topic, messages, seconds)?,
        Command::Latency { shape, rate, seconds, warmup } => {
            latency::run(&common, &shape.into(), latency::Pace { rate, seconds, warmup })?
        }
        Command::Partitions { topic, count } => partitions::run(&common, &topic, count, probe.as_ref())?,
    };
    if let (Some(probe), Some(before)) = (probe, before) {
        report.add_broker(&before, &probe.sample()?);
    }
    Ok(report)
}

impl From<ProduceShape> for produce::Shape {
    fn from(s: ProduceShape) -> Self {
        produce::Shape {
            topic: s.topic,
            size: s.size as usize,
            acks: s.acks,
            compression: s.compression,
            partitions: s.partitions,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    match run(cli) {
        Ok(report) => {
            println!("{}", if json { report.json_line() } else { report.human_line() });
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gregor-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
