//! `gregor topics`: create, list, describe, delete and grow topics (kafka-topics.sh).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use gregor_client::{Client, ConfigResource, TopicInfo};

use crate::common::{connect, emit, emitln, failed, key_value, run_async, table, usage, CliResult, ConnectArgs};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor topics create orders --partitions 3 --config retention.ms=86400000
  gregor topics list
  gregor topics describe orders
  gregor topics alter orders --partitions 6
  gregor topics delete orders")]
pub(crate) struct TopicsArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(long, value_name = "N")]
        partitions: Option<i32>,
        /// Replicas per partition (default: the broker's default.replication.factor).
        #[arg(long, value_name = "N")]
        replication_factor: Option<i16>,
        /// A topic config, repeatable: --config cleanup.policy=compact
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topic names.
    List {
        /// Also list internal topics (__consumer_offsets).
        #[arg(long)]
        internal: bool,
    },
    /// Describe topics: id, partition count, configs set on the topic, and per partition
    /// the leader, replicas, ISR, log start/end offsets and size on the leader's disk
    /// (`-` when the broker does not serve DescribeLogDirs).
    Describe {
        /// Topics to describe (default: all).
        names: Vec<String>,
    },
    /// Delete topics and their data.
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Add partitions to a topic.
    Alter {
        /// Topic name.
        name: String,
        /// The new, larger partition count.
        #[arg(long, value_name = "N")]
        partitions: i32,
    },
}

pub(crate) fn run(args: TopicsArgs) -> Result<(), String> {
    run_async(async move {
        let mut client = connect(&args.conn).await?;
        match args.command {
            TopicsCommand::Create { name, partitions, replication_factor, configs } => {
                let configs = configs.iter().map(|c| key_value(c, "--config")).collect::<CliResult<Vec<_>>>()?;
                client
                    .create_topic(&name, partitions.unwrap_or(-1), replication_factor.unwrap_or(-1), &configs)
                    .await?;
                emitln(&format!("Created topic {name}."))
            }
            TopicsCommand::List { internal } => list(&mut client, internal).await,
            TopicsCommand::Describe { names } => describe(&mut client, names).await,
            TopicsCommand::Delete { names } => delete(&mut client, &names).await,
            TopicsCommand::Alter { name, partitions } => {
                let current = client.topic(&name).await?.partitions.len();
                if usize::try_from(partitions).unwrap_or(0) <= current {
                    return Err(usage(format!(
                        "topic '{name}' has {current} partitions; --partitions must be larger (partitions cannot be removed)"
                    )));
                }
                client.create_partitions(&name, partitions).await?;
                emitln(&format!("Topic {name} now has {partitions} partitions."))
            }
        }
    })
}

async fn list(client: &mut Client, internal: bool) -> CliResult {
    let meta = client.metadata(None).await?;
    let mut names: Vec<&str> = meta
        .topics
        .iter()
        .filter(|t| t.error_code == 0 && (internal || !t.internal))
        .map(|t| t.name.as_str())
        .collect();
    names.sort_unstable();
    let mut out = String::new();
    for n in names {
        out.push_str(n);
        out.push('\n');
    }
    emit(&out)
}

async fn describe(client: &mut Client, names: Vec<String>) -> CliResult {
    let topics: Vec<TopicInfo> = if names.is_empty() {
        let mut all: Vec<TopicInfo> = client.metadata(None).await?.topics.into_iter().filter(|t| !t.internal).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    } else {
        let mut found = Vec::new();
        for n in &names {
            found.push(client.topic(n).await?);
        }
        found
    };
    let mut out = String::new();
    for (i, topic) in topics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&describe_one(client, topic).await?);
    }
    emit(&out)
}

async fn describe_one(client: &mut Client, topic: &TopicInfo) -> CliResult<String> {
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    let marks = client.watermarks(&topic.name, &partitions).await?;
    let configs = client.describe_configs(&ConfigResource::Topic(topic.name.clone())).await.unwrap_or_default();
    let set: Vec<String> = configs
        .iter()
        .filter(|c| c.source.0 == 1)
        .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("")))
        .collect();
    let sizes = sizes(client, topic).await;
    let rf = topic.partitions.first().map_or(0, |p| p.replicas.len());
    let mut out = format!(
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
        topic.name,
        topic.topic_id,
        topic.partitions.len(),
        rf,
        set.join(",")
    );
    let join = |ids: &[i32]| ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|p| {
            let (start, end) = marks.get(&p.partition).copied().unwrap_or((-1, -1));
            vec![
                p.partition.to_string(),
                if p.leader < 0 { "none".into() } else { p.leader.to_string() },
                join(&p.replicas),
                join(&p.isr),
                start.to_string(),
                end.to_string(),
                (end - start).max(0).to_string(),
                sizes.get(&p.partition).map_or("-".into(), ToString::to_string),
            ]
        })
        .collect();
    out.push_str(&table(
        &["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END", "MESSAGES", "SIZE"],
        &rows,
    ));
    Ok(out)
}

/// Partition sizes from each leader's DescribeLogDirs; empty if unsupported.
async fn sizes(client: &mut Client, topic: &TopicInfo) -> BTreeMap<i32, i64> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in topic.partitions.iter().filter(|p| p.leader >= 0) {
        by_leader.entry(p.leader).or_default().push(p.partition);
    }
    let mut out = BTreeMap::new();
    for (leader, partitions) in by_leader {
        if let Ok(sizes) = client.partition_sizes(leader, &topic.name, &partitions).await {
            out.extend(sizes);
        }
    }
    out
}

async fn delete(client: &mut Client, names: &[String]) -> CliResult {
    let results = client.delete_topics(names).await?;
    let mut first_error = None;
    for (name, result) in results {
        match result {
            Ok(()) => emitln(&format!("Deleted topic {name}."))?,
            Err(e) if e.code() == Some(3) => {
                first_error.get_or_insert(failed(format!("topic '{name}' does not exist")));
            }
            Err(e) => {
                first_error.get_or_insert(e.into());
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
