//! `gregor`: the broker and, later, its tools, as one binary.
#![forbid(unsafe_code)]

mod acls;
mod cluster;
mod common;
mod configs;
mod consume;
mod consume_format;
mod dump_log;
mod groups;
mod groups_reset;
mod local_cluster;
mod produce;
mod reassign;
mod serve;
mod storage;
mod topics;
mod transactions;
mod users;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "gregor", version, about = "A Kafka-compatible streaming platform")]
struct Cli {
    #[command(flatten)]
    global: common::Global,
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
    /// Run a cluster of N nodes on this machine (child processes on 127.0.0.1).
    LocalCluster(local_cluster::LocalClusterArgs),
    /// Print and verify segment and index files offline (no broker needed).
    DumpLog(dump_log::DumpLogArgs),
    /// Format a data dir with a cluster id, or print its identity (kafka-storage.sh).
    Storage(storage::StorageArgs),
    /// List, describe and abort transactions; describe a partition's producers
    /// (kafka-transactions.sh).
    Transactions(transactions::TransactionsArgs),
    /// SCRAM users: create, list, delete (kafka-configs.sh --entity-type users).
    Users(users::UsersArgs),
    /// ACLs: add, list, remove (kafka-acls.sh).
    Acls(acls::AclsArgs),
    /// Print a shell completion script for bash, zsh or fish.
    #[command(after_help = "Examples:
  gregor completion bash > ~/.local/share/bash-completion/completions/gregor
  gregor completion zsh > ~/.zfunc/_gregor        (with fpath+=~/.zfunc before compinit)
  gregor completion fish > ~/.config/fish/completions/gregor.fish")]
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Topics(args) => topics::run(args, &cli.global),
        Command::Produce(args) => produce::run(args, &cli.global),
        Command::Consume(args) => consume::run(args, &cli.global),
        Command::Groups(args) => groups::run(args, &cli.global),
        Command::Cluster(args) => cluster::run(args, &cli.global),
        Command::Configs(args) => configs::run(args, &cli.global),
        Command::LocalCluster(args) => local_cluster::run(args),
        Command::DumpLog(args) => dump_log::run(args),
        Command::Storage(args) => storage::run(args),
        Command::Transactions(args) => transactions::run(args, &cli.global),
        Command::Users(args) => users::run(args, &cli.global),
        Command::Acls(args) => acls::run(args, &cli.global),
        Command::Completion { shell } => completion(shell),
    };
    if let Err(message) = result {
        eprintln!("gregor: {message}");
        std::process::exit(1);
    }
}

/// Writes the completion script for `shell` to stdout.
fn completion(shell: clap_complete::Shell) -> Result<(), String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gregor", &mut script);
    common::emit(&String::from_utf8_lossy(&script)).map_err(|e| e.to_string())
}
