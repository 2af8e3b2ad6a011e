//! `gregor storage`: Kafka's `kafka-storage.sh` (format, random-uuid, info) for a
//! node's data dir, offline (no broker needed). Formatting is optional with Gregor:
//! unformatted nodes agree on a cluster id through the quorum at first start.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use gregor_broker::storage::{self, FormatOutcome};
use gregor_broker::BrokerConfig;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor storage random-uuid
  gregor storage format --cluster-id \"$(gregor storage random-uuid)\" --config server.properties
  gregor storage format -t MkU3OEVBNTcwNTJENDM2Qk --node-id 2 --data-dir d2
  gregor storage info --data-dir d2")]
pub(crate) struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Print a new cluster id.
    RandomUuid,
    /// Write meta.properties (cluster id, node id, directory id) into the data dir.
    Format {
        /// The cluster id (Kafka's `-t/--cluster-id`), e.g. from `gregor storage random-uuid`.
        #[arg(short = 't', long)]
        cluster_id: String,
        /// Leave an already formatted data dir as it is instead of failing.
        #[arg(short = 'g', long)]
        ignore_formatted: bool,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Print the data dir's cluster id, node id and directory id.
    Info {
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// The node whose data dir is meant, as `gregor serve` takes it.
#[derive(Debug, Args)]
struct NodeArgs {
    /// A `server.properties` file (its `node.id` and `log.dirs` are used).
    #[arg(short = 'c', long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides `log.dirs`. Default: ./gregor-data
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Overrides `node.id`. Default: 0
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// Any config key (repeatable), as for `gregor serve`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl NodeArgs {
    fn config(&self) -> Result<BrokerConfig, String> {
        let mut pairs = crate::serve::file_then_sets(self.config.as_deref(), &[], &self.set)?;
        if let Some(dir) = &self.data_dir {
            pairs.push(("log.dirs".into(), dir.display().to_string()));
        }
        if let Some(id) = self.node_id {
            pairs.push(("node.id".into(), id.to_string()));
        }
        BrokerConfig::from_pairs(pairs).map_err(|e| e.to_string())
    }
}

pub(crate) fn run(args: StorageArgs) -> Result<(), String> {
    match args.command {
        StorageCommand::RandomUuid => println!("{}", storage::random_uuid()),
        StorageCommand::Format { cluster_id, ignore_formatted, node } => {
            let config = node.config()?;
            match storage::format(&config, &cluster_id, ignore_formatted).map_err(|e| e.to_string())? {
                FormatOutcome::Formatted { dir, node_id, cluster_id } => {
                    println!("Formatted {} for node {node_id} of cluster {cluster_id}", dir.display());
                }
                FormatOutcome::AlreadyFormatted { dir, cluster_id } => {
                    println!("{} is already formatted (cluster {cluster_id}): left as it is", dir.display());
                }
            }
        }
        StorageCommand::Info { node } => {
            let config = node.config()?;
            match storage::info(&config).map_err(|e| e.to_string())? {
                Some(info) => println!(
                    "Data dir: {}\nCluster id: {}\nNode id: {}\nDirectory id: {}",
                    info.dir.display(),
                    info.cluster_id,
                    info.node_id,
                    info.directory_id
                ),
                None => {
                    return Err(format!(
                        "{} is not formatted (no meta.properties): `gregor storage format` or a first start writes it",
                        config.data_dir().display()
                    ))
                }
            }
        }
    }
    Ok(())
}
