//! `gregor topics reassign`: kafka-reassign-partitions.sh. Moves partition replicas
//! between brokers (and changes replication factors) with a JSON plan in Kafka's format:
//!
//! ```json
//! {"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[2,3,4]}]}
//! ```
//!
//! `--generate` proposes a plan for `--topics-to-move-json-file` over `--broker-list`,
//! `--execute` starts it (printing the current assignment to roll back with), `--verify`
//! reports progress and clears the throttles once it completed, `--cancel` stops it and
//! `--list` shows every reassignment in progress.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use gregor_client::{Client, ConfigOp, ConfigResource};
use serde_json::{json, Value};

use crate::common::{emitln, failed, usage, CliResult};

/// The broker and topic configs Kafka's tool sets for `--throttle` and clears on `--verify`.
const BROKER_THROTTLES: [&str; 2] = ["leader.replication.throttled.rate", "follower.replication.throttled.rate"];
const TOPIC_THROTTLES: [&str; 2] = ["leader.replication.throttled.replicas", "follower.replication.throttled.replicas"];

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor topics reassign --generate --topics-to-move-json-file topics.json --broker-list 1,2,3
  gregor topics reassign --execute --reassignment-json-file plan.json --throttle 10000000
  gregor topics reassign --verify --reassignment-json-file plan.json
  gregor topics reassign --cancel --reassignment-json-file plan.json
  gregor topics reassign --list")]
pub(crate) struct ReassignArgs {
    /// Propose a plan that spreads the topics of --topics-to-move-json-file over --broker-list.
    #[arg(long, group = "mode")]
    generate: bool,
    /// Start the reassignment of --reassignment-json-file.
    #[arg(long, group = "mode", requires = "reassignment_json_file")]
    execute: bool,
    /// Report the progress of --reassignment-json-file; clear its throttles when done.
    #[arg(long, group = "mode", requires = "reassignment_json_file")]
    verify: bool,
    /// Cancel the reassignments of --reassignment-json-file (back to the old replicas).
    #[arg(long, group = "mode", requires = "reassignment_json_file")]
    cancel: bool,
    /// List every reassignment in progress.
    #[arg(long, group = "mode")]
    list: bool,
    /// The plan: {"version":1,"partitions":[{"topic":T,"partition":P,"replicas":[...]}]}.
    #[arg(long, value_name = "FILE")]
    reassignment_json_file: Option<String>,
    /// Topics for --generate: {"version":1,"topics":[{"topic":T}]}.
    #[arg(long, value_name = "FILE", requires = "generate")]
    topics_to_move_json_file: Option<String>,
    /// Brokers for --generate, comma-separated ids.
    #[arg(long, value_name = "IDS", requires = "generate")]
    broker_list: Option<String>,
    /// With --execute: limit replication traffic of the moving partitions, bytes/s.
    #[arg(long, value_name = "BYTES_PER_SEC", requires = "execute")]
    throttle: Option<u64>,
    /// With --verify or --cancel: keep the throttles.
    #[arg(long)]
    preserve_throttles: bool,
    /// With --execute: refuse a plan that changes a partition's replication factor.
    #[arg(long, requires = "execute")]
    disallow_replication_factor_change: bool,
}

type Plan = Vec<(String, i32, Vec<i32>)>;

pub(crate) async fn run(client: &mut Client, args: ReassignArgs) -> CliResult {
    if args.list {
        return list(client).await;
    }
    if args.generate {
        return generate(client, &args).await;
    }
    let Some(path) = args.reassignment_json_file.as_deref() else {
        return Err(usage("one of --generate, --execute, --verify, --cancel or --list is required"));
    };
    let plan = read_plan(path)?;
    if args.execute {
        execute(client, &plan, &args).await
    } else if args.verify {
        verify(client, &plan, args.preserve_throttles).await
    } else if args.cancel {
        cancel(client, &plan, args.preserve_throttles).await
    } else {
        Err(usage("one of --generate, --execute, --verify, --cancel or --list is required"))
    }
}

fn read_json(path: &str) -> CliResult<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| failed(format!("cannot read {path}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| usage(format!("{path} is not JSON: {e}")))
}

fn read_plan(path: &str) -> CliResult<Plan> {
    let json = read_json(path)?;
    let entries = json["partitions"].as_array().ok_or_else(|| usage(format!("{path}: no \"partitions\" list")))?;
    let mut plan = Vec::new();
    for entry in entries {
        let bad = || usage(format!("{path}: each partition needs \"topic\", \"partition\" and \"replicas\": {entry}"));
        let topic = entry["topic"].as_str().ok_or_else(bad)?.to_owned();
        let partition = entry["partition"].as_i64().and_then(|p| i32::try_from(p).ok()).ok_or_else(bad)?;
        let replicas = entry["replicas"].as_array().ok_or_else(bad)?;
        let replicas = replicas
            .iter()
            .map(|r| r.as_i64().and_then(|r| i32::try_from(r).ok()).ok_or_else(bad))
            .collect::<CliResult<Vec<i32>>>()?;
        plan.push((topic, partition, replicas));
    }
    if plan.is_empty() {
        return Err(usage(format!("{path}: the plan lists no partitions")));
    }
    Ok(plan)
}

fn plan_json(plan: &[(String, i32, Vec<i32>)]) -> String {
    let partitions: Vec<Value> = plan
        .iter()
        .map(|(t, p, r)| json!({"topic": t, "partition": p, "replicas": r, "log_dirs": vec!["any"; r.len()]}))
        .collect();
    json!({"version": 1, "partitions": partitions}).to_string()
}

/// The current replicas of the plan's partitions, from Metadata.
async fn current_assignment(client: &mut Client, plan: &[(String, i32, Vec<i32>)]) -> CliResult<Plan> {
    let topics: BTreeSet<&str> = plan.iter().map(|(t, _, _)| t.as_str()).collect();
    let mut current = Vec::new();
    for topic in topics {
        let info = client.topic(topic).await?;
        for (t, p, _) in plan.iter().filter(|(t, _, _)| t == topic) {
            let found = info.partitions.iter().find(|x| x.partition == *p);
            let found = found.ok_or_else(|| failed(format!("partition {t}-{p} does not exist")))?;
            current.push((t.clone(), *p, found.replicas.clone()));
        }
    }
    Ok(current)
}

async fn execute(client: &mut Client, plan: &Plan, args: &ReassignArgs) -> CliResult {
    let current = current_assignment(client, plan).await?;
    emitln(&format!(
        "Current partition replica assignment\n\n{}\n\nSave this to use as the --reassignment-json-file option during rollback",
        plan_json(&current)
    ))?;
    if let Some(rate) = args.throttle {
        set_throttles(client, plan, &current, rate).await?;
        emitln(&format!("Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.\nThe inter-broker throttle limit was set to {rate} B/s"))?;
    }
    let targets: Vec<_> = plan.iter().map(|(t, p, r)| (t.clone(), *p, Some(r.clone()))).collect();
    let answers = client.alter_partition_reassignments(&targets, !args.disallow_replication_factor_change).await?;
    let (ok, errors) = split(&answers);
    if !errors.is_empty() {
        return Err(failed(format!("Error reassigning partition(s):\n{}", errors.join("\n"))));
    }
    emitln(&format!("Successfully started partition reassignments for {}", ok.join(",")))
}

/// `t-p` of the accepted partitions and `t-p: ERROR` lines of the refused ones.
fn split(answers: &[gregor_client::PartitionAnswer]) -> (Vec<String>, Vec<String>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (t, p, code, message) in answers {
        if *code == 0 {
            ok.push(format!("{t}-{p}"));
        } else {
            errors.push(format!("{t}-{p}: {}", gregor_client::describe_code(*code, message.as_deref())));
        }
    }
    (ok, errors)
}

/// Kafka's throttle layout: the rate on every broker involved; per topic, the current
/// replicas as throttled leaders (they send) and the new ones as throttled followers.
async fn set_throttles(client: &mut Client, plan: &Plan, current: &Plan, rate: u64) -> CliResult {
    let mut brokers = BTreeSet::new();
    let mut leaders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((topic, partition, target), (_, _, now)) in plan.iter().zip(current) {
        brokers.extend(target.iter().chain(now).copied());
        leaders.entry(topic).or_default().extend(now.iter().map(|b| format!("{partition}:{b}")));
        let moving = target.iter().filter(|b| !now.contains(b)).map(|b| format!("{partition}:{b}"));
        followers.entry(topic).or_default().extend(moving);
    }
    for broker in brokers {
        let ops: Vec<ConfigOp> =
            BROKER_THROTTLES.iter().map(|k| ConfigOp::Set((*k).into(), rate.to_string())).collect();
        client.alter_configs(&ConfigResource::Broker(broker), &ops).await?;
    }
    for (topic, leader_replicas) in leaders {
        let follower_replicas = followers.remove(topic).unwrap_or_default();
        let ops = vec![
            ConfigOp::Set(TOPIC_THROTTLES[0].into(), leader_replicas.join(",")),
            ConfigOp::Set(TOPIC_THROTTLES[1].into(), follower_replicas.join(",")),
        ];
        client.alter_configs(&ConfigResource::Topic(topic.to_owned()), &ops).await?;
    }
    Ok(())
}

/// Deletes the throttles: the topics' first (any broker takes them), then each broker's
/// rates on that broker; a broker that cannot be reached keeps its rate and is named, so
/// the operator knows the move itself is done and what to clear again.
async fn clear_throttles(client: &mut Client, plan: &Plan) -> CliResult {
    let topics: BTreeSet<&str> = plan.iter().map(|(t, _, _)| t.as_str()).collect();
    for topic in &topics {
        let ops: Vec<ConfigOp> = TOPIC_THROTTLES.iter().map(|k| ConfigOp::Delete((*k).into())).collect();
        client.alter_configs(&ConfigResource::Topic((*topic).to_owned()), &ops).await?;
        emitln(&format!("Clearing topic-level throttles on topic {topic}"))?;
    }
    let meta = client.metadata(Some(&[])).await?;
    let brokers: Vec<i32> = meta.brokers.iter().map(|b| b.node_id).collect();
    let (mut cleared, mut failed_on) = (Vec::new(), Vec::new());
    for &broker in &brokers {
        let ops: Vec<ConfigOp> = BROKER_THROTTLES.iter().map(|k| ConfigOp::Delete((*k).into())).collect();
        match client.alter_configs(&ConfigResource::Broker(broker), &ops).await {
            Ok(()) => cleared.push(broker.to_string()),
            Err(e) => failed_on.push(format!("broker {broker} ({e})")),
        }
    }
    emitln(&format!("Clearing broker-level throttles on brokers {}", cleared.join(",")))?;
    if failed_on.is_empty() {
        return Ok(());
    }
    Err(failed(format!(
        "could not clear the replication throttle rates on {}: run --verify again once they are reachable, \
         or gregor configs alter --broker N --delete leader.replication.throttled.rate --delete follower.replication.throttled.rate",
        failed_on.join(", ")
    )))
}

async fn verify(client: &mut Client, plan: &Plan, preserve_throttles: bool) -> CliResult {
    let named: Vec<(String, i32)> = plan.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let ongoing = client.list_partition_reassignments(Some(&named)).await?;
    let current = current_assignment(client, plan).await?;
    let mut lines = vec!["Status of partition reassignment:".to_owned()];
    let mut all_done = true;
    for ((t, p, target), (_, _, now)) in plan.iter().zip(&current) {
        let in_progress = ongoing.iter().any(|o| o.topic == *t && o.partition == *p);
        lines.push(if in_progress {
            all_done = false;
            format!("Reassignment of partition {t}-{p} is still in progress.")
        } else if now == target {
            format!("Reassignment of partition {t}-{p} is completed.")
        } else {
            format!(
                "There is no active reassignment of partition {t}-{p}, but replica set is {} rather than {}.",
                ids(now),
                ids(target)
            )
        });
    }
    emitln(&lines.join("\n"))?;
    if all_done && !preserve_throttles {
        emitln("")?;
        clear_throttles(client, plan).await?;
    }
    Ok(())
}

async fn cancel(client: &mut Client, plan: &Plan, preserve_throttles: bool) -> CliResult {
    let targets: Vec<_> = plan.iter().map(|(t, p, _)| (t.clone(), *p, None)).collect();
    let answers = client.alter_partition_reassignments(&targets, true).await?;
    // Partitions that were not moving are no error for a cancel.
    let (ok, errors) = split(&answers);
    let errors: Vec<String> = errors.into_iter().filter(|e| !e.contains("NO_REASSIGNMENT_IN_PROGRESS")).collect();
    if !errors.is_empty() {
        return Err(failed(format!("Error cancelling partition reassignment(s):\n{}", errors.join("\n"))));
    }
    if ok.is_empty() {
        emitln("None of the specified partition reassignments are active.")?;
    } else {
        emitln(&format!("Successfully cancelled partition reassignments for: {}", ok.join(",")))?;
    }
    if !preserve_throttles {
        clear_throttles(client, plan).await?;
    }
    Ok(())
}

async fn list(client: &mut Client) -> CliResult {
    let ongoing = client.list_partition_reassignments(None).await?;
    if ongoing.is_empty() {
        return emitln("No partition reassignments found.");
    }
    let mut lines = vec!["Current partition reassignments:".to_owned()];
    for o in ongoing {
        lines.push(format!(
            "{}-{}: replicas: {}. adding: {}. removing: {}.",
            o.topic,
            o.partition,
            ids(&o.replicas),
            ids(&o.adding),
            ids(&o.removing)
        ));
    }
    emitln(&lines.join("\n"))
}

fn ids(brokers: &[i32]) -> String {
    brokers.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Kafka's `--generate`: the topics' partitions placed over the listed brokers with the
/// same replication factor (rack-aware, as topic creation places them).
async fn generate(client: &mut Client, args: &ReassignArgs) -> CliResult {
    let (Some(path), Some(list)) = (args.topics_to_move_json_file.as_deref(), args.broker_list.as_deref()) else {
        return Err(usage("--generate needs --topics-to-move-json-file and --broker-list"));
    };
    let json = read_json(path)?;
    let topics = json["topics"].as_array().ok_or_else(|| usage(format!("{path}: no \"topics\" list")))?;
    let topics = topics
        .iter()
        .map(|t| t["topic"].as_str().map(str::to_owned))
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| usage(format!("{path}: each entry of \"topics\" needs a \"topic\" name")))?;
    let wanted = list
        .split(',')
        .map(|b| b.trim().parse::<i32>().map_err(|_| usage(format!("--broker-list: '{b}' is not a broker id"))))
        .collect::<CliResult<Vec<i32>>>()?;
    let meta = client.metadata(Some(&[])).await?;
    let candidates: Vec<gregor_metadata::placement::Candidate> = wanted
        .iter()
        .map(|id| {
            let rack = meta.brokers.iter().find(|b| b.node_id == *id).and_then(|b| b.rack.clone());
            gregor_metadata::placement::Candidate { node_id: *id, rack }
        })
        .collect();
    let mut current = Vec::new();
    let mut proposed = Vec::new();
    for (n, topic) in topics.iter().enumerate() {
        let info = client.topic(topic).await?;
        let rf = info.partitions.first().map_or(1, |p| p.replicas.len());
        if rf > candidates.len() {
            return Err(usage(format!(
                "topic '{topic}' has replication factor {rf}, more than the {} brokers listed",
                candidates.len()
            )));
        }
        let count = i32::try_from(info.partitions.len()).unwrap_or(i32::MAX);
        let seed = gregor_metadata::placement::Seed { start: n, shift: n };
        for (p, replicas) in gregor_metadata::placement::assign(&candidates, 0, count, rf, seed) {
            proposed.push((topic.clone(), p, replicas));
        }
        current.extend(info.partitions.iter().map(|p| (topic.clone(), p.partition, p.replicas.clone())));
    }
    emitln(&format!(
        "Current partition replica assignment\n{}\n\nProposed partition reassignment configuration\n{}",
        plan_json(&current),
        plan_json(&proposed)
    ))
}
