//! `gregor`: the broker and, later, its tools, as one binary.
#![forbid(unsafe_code)]

mod cluster;
mod common;
mod configs;
mod consume;
mod consume_format;
mod dump_log;
mod groups;
mod groups_reset;
mod produce;
mod serve;
mod topics;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gregor", version, about = "A Kafka-compatible streaming platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a broker (single node; data under ./gregor-data, clients on localhost:9092).
    Serve(serve::ServeArgs),
    /// Create, list, describe, grow and delete topics.
    Topics(topics::TopicsArgs),
    /// Write lines from stdin or a file to a topic.
    Produce(produce::ProduceArgs),
    /// Print records of topics, following new ones.
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    Groups(groups::GroupsArgs),
    /// Describe the cluster: id, controller, brokers, API versions.
    Cluster(cluster::ClusterArgs),
    /// Describe and alter topic and broker configs.
    Configs(configs::ConfigsArgs),
    /// Print and verify segment and index files offline (no broker needed).
    DumpLog(dump_log::DumpLogArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topics(args) => topics::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Consume(args) => consume::run(args),
        Command::Groups(args) => groups::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Configs(args) => configs::run(args),
        Command::DumpLog(args) => dump_log::run(args),
    };
    if let Err(message) = result {
        eprintln!("gregor: {message}");
        std::process::exit(1);
    }
}
