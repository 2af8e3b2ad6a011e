//! `gregor topics`: create, list, describe, delete and grow topics (kafka-topics.sh).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use gregor_client::{Client, ConfigResource, TopicInfo};

use serde_json::{json, Value};

use crate::common::{
    connect, emit, emit_json, emitln, failed, key_value, run_async, table, usage, CliResult, Global, Output,
};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor topics create orders --partitions 3 --config retention.ms=86400000
  gregor topics list
  gregor topics describe orders
  gregor topics alter orders --partitions 6
  gregor topics delete orders")]
pub(crate) struct TopicsArgs {
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
        #[command(flatten)]
        only: PartitionFilter,
    },
    /// Delete topics and their data.
    Delete {
        /// Topics to delete.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Elect leaders (kafka-leader-election.sh): `preferred` moves leadership back to each
    /// partition's first replica if it is in sync; `unclean` gives leaderless partitions a
    /// live replica even outside the ISR (acknowledged records may be lost).
    ElectLeaders {
        #[arg(long, value_name = "preferred|unclean")]
        election_type: String,
        /// Only this topic (default: every partition of every topic).
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition of `--topic`.
        #[arg(long, requires = "topic")]
        partition: Option<i32>,
    },
    /// Move replicas between brokers or change replication factors
    /// (kafka-reassign-partitions.sh): --generate, --execute, --verify, --cancel, --list.
    Reassign(crate::reassign::ReassignArgs),
    /// Add partitions to a topic.
    Alter {
        /// Topic name.
        name: String,
        /// The new, larger partition count.
        #[arg(long, value_name = "N")]
        partitions: i32,
    },
}

pub(crate) fn run(args: TopicsArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match args.command {
            TopicsCommand::Create { name, partitions, replication_factor, configs } => {
                let configs = configs.iter().map(|c| key_value(c, "--config")).collect::<CliResult<Vec<_>>>()?;
                client
                    .create_topic(&name, partitions.unwrap_or(-1), replication_factor.unwrap_or(-1), &configs)
                    .await?;
                emitln(&format!("Created topic {name}."))
            }
            TopicsCommand::List { internal } => list(&mut client, internal, global.output).await,
            TopicsCommand::Describe { names, only } => describe(&mut client, names, only, global.output).await,
            TopicsCommand::Delete { names } => delete(&mut client, &names).await,
            TopicsCommand::ElectLeaders { election_type, topic, partition } => {
                elect_leaders(&mut client, &election_type, topic, partition).await
            }
            TopicsCommand::Reassign(args) => crate::reassign::run(&mut client, args).await,
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

async fn list(client: &mut Client, internal: bool, output: Output) -> CliResult {
    let meta = client.metadata(None).await?;
    let mut topics: Vec<&TopicInfo> =
        meta.topics.iter().filter(|t| t.error_code == 0 && (internal || !t.internal)).collect();
    topics.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let rf = |t: &TopicInfo| t.partitions.first().map_or(0, |p| p.replicas.len());
    match output {
        Output::Table => emit(&topics.iter().map(|t| format!("{}\n", t.name)).collect::<String>()),
        Output::Wide => {
            let rows: Vec<Vec<String>> = topics
                .iter()
                .map(|t| {
                    let internal = if t.internal { "yes" } else { "no" };
                    vec![
                        t.name.clone(),
                        t.topic_id.to_string(),
                        t.partitions.len().to_string(),
                        rf(t).to_string(),
                        internal.into(),
                    ]
                })
                .collect();
            emit(&table(&["NAME", "TOPIC-ID", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL"], &rows))
        }
        Output::Json => emit_json(&Value::Array(
            topics
                .iter()
                .map(|t| {
                    json!({"name": t.name, "topic_id": t.topic_id.to_string(), "partitions": t.partitions.len(),
                           "replication_factor": rf(t), "internal": t.internal})
                })
                .collect(),
        )),
    }
}

/// kafka-topics.sh's filters of `--describe`: only the partitions in that state.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub(crate) struct PartitionFilter {
    /// Only partitions whose ISR is smaller than their replica list.
    #[arg(long)]
    under_replicated_partitions: bool,
    /// Only partitions whose ISR is smaller than the topic's `min.insync.replicas`.
    #[arg(long)]
    under_min_isr_partitions: bool,
    /// Only partitions whose ISR is exactly `min.insync.replicas`.
    #[arg(long)]
    at_min_isr_partitions: bool,
    /// Only partitions without a leader.
    #[arg(long)]
    unavailable_partitions: bool,
}

impl PartitionFilter {
    fn is_set(self) -> bool {
        self.under_replicated_partitions
            || self.under_min_isr_partitions
            || self.at_min_isr_partitions
            || self.unavailable_partitions
    }

    fn keeps(self, p: &gregor_client::PartitionInfo, min_isr: usize) -> bool {
        !self.is_set()
            || (self.under_replicated_partitions && p.isr.len() < p.replicas.len())
            || (self.under_min_isr_partitions && p.isr.len() < min_isr)
            || (self.at_min_isr_partitions && p.isr.len() == min_isr)
            || (self.unavailable_partitions && p.leader < 0)
    }
}

async fn describe(client: &mut Client, names: Vec<String>, only: PartitionFilter, output: Output) -> CliResult {
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
    let mut views = Vec::new();
    for topic in &topics {
        let mut view = topic_view(client, topic).await?;
        let min_isr = view.min_isr;
        view.topic.partitions.retain(|p| only.keeps(p, min_isr));
        if !only.is_set() || !view.topic.partitions.is_empty() {
            views.push(view);
        }
    }
    if output == Output::Json {
        return emit_json(&Value::Array(views.iter().map(TopicView::json).collect()));
    }
    let texts: Vec<String> = views.iter().map(|v| v.render(output == Output::Wide)).collect();
    emit(&texts.join("\n"))
}

/// What `topics describe` shows of one topic.
#[derive(Debug)]
struct TopicView {
    topic: TopicInfo,
    /// Configs set on the topic itself.
    configs: Vec<(String, String)>,
    /// Per partition: log start and end offsets.
    marks: BTreeMap<i32, (i64, i64)>,
    sizes: BTreeMap<i32, i64>,
    /// The topic's effective `min.insync.replicas`.
    min_isr: usize,
}

async fn topic_view(client: &mut Client, topic: &TopicInfo) -> CliResult<TopicView> {
    let partitions: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    // A partition without a leader has no offsets to show: `-1` rather than a failure.
    let led: Vec<i32> = topic.partitions.iter().filter(|p| p.leader >= 0).map(|p| p.partition).collect();
    let marks = if led.len() == partitions.len() {
        client.watermarks(&topic.name, &partitions).await?
    } else {
        client.watermarks(&topic.name, &led).await.unwrap_or_default()
    };
    let all = client.describe_configs(&ConfigResource::Topic(topic.name.clone())).await.unwrap_or_default();
    let min_isr = all
        .iter()
        .find(|c| c.name == "min.insync.replicas")
        .and_then(|c| c.value.as_deref()?.parse().ok())
        .unwrap_or(1);
    let configs = all.into_iter().filter(|c| c.source.0 == 1).map(|c| (c.name, c.value.unwrap_or_default())).collect();
    let sizes = sizes(client, topic).await;
    Ok(TopicView { topic: topic.clone(), configs, marks, sizes, min_isr })
}

fn join_ids(ids: &[i32]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

impl TopicView {
    fn replication_factor(&self) -> usize {
        self.topic.partitions.first().map_or(0, |p| p.replicas.len())
    }

    fn marks(&self, partition: i32) -> (i64, i64) {
        self.marks.get(&partition).copied().unwrap_or((-1, -1))
    }

    /// The header line and the partition table; `wide` adds leader epochs and offline replicas.
    fn render(&self, wide: bool) -> String {
        let t = &self.topic;
        let set: Vec<String> = self.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut out = format!(
            "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}\n",
            t.name,
            t.topic_id,
            t.partitions.len(),
            self.replication_factor(),
            set.join(",")
        );
        let rows: Vec<Vec<String>> = t
            .partitions
            .iter()
            .map(|p| {
                let (start, end) = self.marks(p.partition);
                let mut row = vec![
                    p.partition.to_string(),
                    if p.leader < 0 { "none".into() } else { p.leader.to_string() },
                    join_ids(&p.replicas),
                    join_ids(&p.isr),
                    start.to_string(),
                    end.to_string(),
                    (end - start).max(0).to_string(),
                    self.sizes.get(&p.partition).map_or("-".into(), ToString::to_string),
                ];
                if wide {
                    row.push(p.leader_epoch.to_string());
                    row.push(if p.offline.is_empty() { "-".into() } else { join_ids(&p.offline) });
                }
                row
            })
            .collect();
        let mut header = vec!["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END", "MESSAGES", "SIZE"];
        if wide {
            header.extend(["LEADER-EPOCH", "OFFLINE"]);
        }
        out.push_str(&table(&header, &rows));
        out
    }

    fn json(&self) -> Value {
        let t = &self.topic;
        let partitions: Vec<Value> = t
            .partitions
            .iter()
            .map(|p| {
                let (start, end) = self.marks(p.partition);
                json!({"partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
                       "replicas": p.replicas, "isr": p.isr, "offline_replicas": p.offline,
                       "log_start_offset": start, "log_end_offset": end, "messages": (end - start).max(0),
                       "size_bytes": self.sizes.get(&p.partition)})
            })
            .collect();
        let configs: serde_json::Map<String, Value> =
            self.configs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        json!({"name": t.name, "topic_id": t.topic_id.to_string(), "internal": t.internal,
               "partition_count": t.partitions.len(), "replication_factor": self.replication_factor(),
               "configs": configs, "partitions": partitions})
    }
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

async fn elect_leaders(
    client: &mut Client,
    election_type: &str,
    topic: Option<String>,
    partition: Option<i32>,
) -> CliResult {
    let unclean = match election_type {
        "preferred" => false,
        "unclean" => true,
        other => return Err(usage(format!("--election-type must be preferred or unclean, not '{other}'"))),
    };
    let partitions = match (topic, partition) {
        (Some(t), Some(p)) => Some(vec![(t, p)]),
        (Some(t), None) => {
            let info = client.topic(&t).await?;
            Some(info.partitions.iter().map(|p| (t.clone(), p.partition)).collect())
        }
        _ => None,
    };
    let results = client.elect_leaders(unclean, partitions.as_deref()).await?;
    let mut lines = Vec::new();
    for (t, p, code, message) in &results {
        lines.push(if *code == 0 {
            format!("Successfully completed leader election ({election_type}) for {t}-{p}")
        } else {
            format!("Election for {t}-{p} not done: {}", gregor_client::describe_code(*code, message.as_deref()))
        });
    }
    if lines.is_empty() {
        lines.push("No partition needed an election.".to_owned());
    }
    emitln(&lines.join("\n"))
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
