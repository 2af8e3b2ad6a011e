//! `gregor configs`: describe (with sources) and alter topic and broker configs
//! (kafka-configs.sh). Altering uses IncrementalAlterConfigs; a broker without it makes
//! the command fail with that one sentence.

use clap::{ArgGroup, Args, Subcommand};
use gregor_client::{ConfigOp, ConfigResource};

use crate::common::{connect, emit, emitln, key_value, run_async, table, usage, CliResult, ConnectArgs};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor configs describe --topic orders
  gregor configs describe --broker 0
  gregor configs alter --topic orders --set retention.ms=3600000 --delete cleanup.policy")]
pub(crate) struct ConfigsArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: ConfigsCommand,
}

/// Which resource.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("resource").required(true).args(["topic", "broker"])))]
struct Resource {
    /// A topic.
    #[arg(long, value_name = "NAME")]
    topic: Option<String>,
    /// A broker, by node id.
    #[arg(long, value_name = "ID")]
    broker: Option<i32>,
}

impl Resource {
    fn resource(&self) -> ConfigResource {
        match (&self.topic, self.broker) {
            (Some(t), _) => ConfigResource::Topic(t.clone()),
            (None, b) => ConfigResource::Broker(b.unwrap_or(0)),
        }
    }
}

#[derive(Debug, Subcommand)]
enum ConfigsCommand {
    /// Every config of a topic or broker, with its value and where it comes from.
    Describe {
        #[command(flatten)]
        resource: Resource,
    },
    /// Set or remove configs (IncrementalAlterConfigs).
    Alter {
        #[command(flatten)]
        resource: Resource,
        /// Set a config, repeatable: --set retention.ms=3600000
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove a config (back to its default), repeatable.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
}

pub(crate) fn run(args: ConfigsArgs) -> Result<(), String> {
    run_async(async move {
        let mut client = connect(&args.conn).await?;
        match args.command {
            ConfigsCommand::Describe { resource } => {
                let resource = resource.resource();
                if let ConfigResource::Topic(t) = &resource {
                    client.topic(t).await?;
                }
                let entries = client.describe_configs(&resource).await?;
                let rows: Vec<Vec<String>> = entries
                    .into_iter()
                    .map(|e| {
                        let value =
                            if e.sensitive { "(sensitive)".into() } else { e.value.unwrap_or_else(|| "null".into()) };
                        vec![e.name, value, e.source.to_string(), if e.read_only { "yes".into() } else { "no".into() }]
                    })
                    .collect();
                emit(&table(&["NAME", "VALUE", "SOURCE", "READ-ONLY"], &rows))
            }
            ConfigsCommand::Alter { resource, set, delete } => {
                let mut ops = set
                    .iter()
                    .map(|kv| key_value(kv, "--set").map(|(k, v)| ConfigOp::Set(k, v)))
                    .collect::<CliResult<Vec<_>>>()?;
                ops.extend(delete.into_iter().map(ConfigOp::Delete));
                if ops.is_empty() {
                    return Err(usage("configs alter needs --set KEY=VALUE or --delete KEY"));
                }
                let resource = resource.resource();
                client.alter_configs(&resource, &ops).await?;
                emitln(&format!("Altered the configs of {resource}."))
            }
        }
    })
}
