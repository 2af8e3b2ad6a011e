//! `gregor configs`: describe (with sources) and alter topic and broker configs
//! (kafka-configs.sh). Altering uses IncrementalAlterConfigs; a broker without it makes
//! the command fail with that one sentence.

use clap::{ArgGroup, Args, Subcommand};
use gregor_client::{ConfigEntry, ConfigOp, ConfigResource};
use serde_json::{json, Value};

use crate::common::{connect, emit, emit_json, emitln, key_value, run_async, table, usage, CliResult, Global, Output};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor configs describe --topic orders
  gregor configs describe --broker 0
  gregor configs alter --topic orders --set retention.ms=3600000 --delete cleanup.policy")]
pub(crate) struct ConfigsArgs {
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

pub(crate) fn run(args: ConfigsArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match args.command {
            ConfigsCommand::Describe { resource } => {
                let resource = resource.resource();
                if let ConfigResource::Topic(t) = &resource {
                    client.topic(t).await?;
                }
                let entries = client.describe_configs(&resource).await?;
                describe(&entries, global.output)
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

fn shown_value(e: &ConfigEntry) -> Value {
    match (&e.value, e.sensitive) {
        (_, true) => Value::String("(sensitive)".into()),
        (Some(v), false) => Value::String(v.clone()),
        (None, false) => Value::Null,
    }
}

/// Prints configs: name, value, source, read-only; `wide` adds sensitivity and synonyms.
fn describe(entries: &[ConfigEntry], output: Output) -> CliResult {
    if output == Output::Json {
        let items: Vec<Value> = entries
            .iter()
            .map(|e| {
                let synonyms: Vec<Value> = e
                    .synonyms
                    .iter()
                    .map(|(name, value, source)| json!({"name": name, "value": value, "source": source.to_string()}))
                    .collect();
                json!({"name": e.name, "value": shown_value(e), "source": e.source.to_string(),
                       "read_only": e.read_only, "sensitive": e.sensitive, "synonyms": synonyms})
            })
            .collect();
        return emit_json(&Value::Array(items));
    }
    let wide = output == Output::Wide;
    let yes_no = |b: bool| if b { "yes".to_owned() } else { "no".to_owned() };
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            let value = shown_value(e).as_str().unwrap_or("null").to_owned();
            let mut row = vec![e.name.clone(), value, e.source.to_string(), yes_no(e.read_only)];
            if wide {
                let synonyms: Vec<String> = e
                    .synonyms
                    .iter()
                    .map(|(name, value, source)| format!("{source}:{name}={}", value.as_deref().unwrap_or("null")))
                    .collect();
                row.push(yes_no(e.sensitive));
                row.push(if synonyms.is_empty() { "-".into() } else { synonyms.join(" ") });
            }
            row
        })
        .collect();
    let mut header = vec!["NAME", "VALUE", "SOURCE", "READ-ONLY"];
    if wide {
        header.extend(["SENSITIVE", "SYNONYMS"]);
    }
    emit(&table(&header, &rows))
}
