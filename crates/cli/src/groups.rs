//! `gregor groups`: list, describe (members, assignments, committed offsets and lag),
//! delete, reset offsets and delete offsets of consumer groups (kafka-consumer-groups.sh).

use std::collections::{BTreeMap, BTreeSet};

use clap::{Args, Subcommand};
use gregor_client::{Client, GroupDescription};

use serde_json::{json, Value};

use crate::common::{connect, emit, emit_json, emitln, failed, run_async, table, CliResult, Global, Output};
use crate::groups_reset::{self, ResetArgs};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor groups list
  gregor groups describe billing
  gregor groups reset-offsets billing --topic orders --to-earliest            (shows the plan)
  gregor groups reset-offsets billing --all-topics --by-duration 1h --execute
  gregor groups delete-offsets billing --topic orders
  gregor groups delete billing")]
pub(crate) struct GroupsArgs {
    #[command(subcommand)]
    command: GroupsCommand,
}

#[derive(Debug, Subcommand)]
enum GroupsCommand {
    /// List groups with their state.
    List,
    /// Members (client id, host, assigned partitions) and, per partition, the committed
    /// offset, log end offset and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete groups (they must have no members).
    Delete {
        /// Group ids.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets; shows the plan unless --execute.
    ResetOffsets(ResetArgs),
    /// Delete a group's committed offsets for a topic.
    DeleteOffsets {
        /// Group id.
        group: String,
        /// TOPIC or TOPIC:P1,P2 (default: every partition).
        #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
        topic: String,
    },
}

pub(crate) fn run(args: GroupsArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match args.command {
            GroupsCommand::List => list(&mut client, global.output).await,
            GroupsCommand::Describe { group } => describe(&mut client, &group, global.output).await,
            GroupsCommand::Delete { groups } => delete(&mut client, &groups).await,
            GroupsCommand::ResetOffsets(reset) => groups_reset::run(&mut client, reset).await,
            GroupsCommand::DeleteOffsets { group, topic } => {
                let (topic, partitions) = groups_reset::topic_partitions(&mut client, &topic).await?;
                client.delete_offsets(&group, &topic, &partitions).await?;
                emitln(&format!("Deleted the offsets of group {group} on topic {topic}."))
            }
        }
    })
}

async fn list(client: &mut Client, output: Output) -> CliResult {
    let groups = client.list_groups().await?;
    if output == Output::Json {
        let items: Vec<Value> = groups
            .iter()
            .map(|g| json!({"group": g.group_id, "state": g.state, "protocol_type": g.protocol_type}))
            .collect();
        return emit_json(&Value::Array(items));
    }
    let rows: Vec<Vec<String>> = groups.into_iter().map(|g| vec![g.group_id, g.state, g.protocol_type]).collect();
    emit(&table(&["GROUP", "STATE", "PROTOCOL-TYPE"], &rows))
}

/// Fails with "group 'x' does not exist" when the broker knows nothing about it.
pub(crate) async fn existing_group(client: &mut Client, group: &str) -> CliResult<GroupDescription> {
    let description = client.describe_group(group).await?;
    if description.state == "Dead" && client.committed_offsets(group, None).await?.is_empty() {
        return Err(failed(format!("group '{group}' does not exist")));
    }
    Ok(description)
}

/// Per partition committed or assigned: the committed offset and the assigned member id.
type Partitions = BTreeMap<(String, i32), (Option<i64>, String)>;

async fn describe(client: &mut Client, group: &str, output: Output) -> CliResult {
    let description = existing_group(client, group).await?;
    let committed = client.committed_offsets(group, None).await?;
    let mut partitions: Partitions = BTreeMap::new();
    for c in &committed {
        partitions.insert((c.topic.clone(), c.partition), (Some(c.offset), "-".into()));
    }
    for m in &description.members {
        for (topic, ps) in &m.assignment {
            for p in ps {
                partitions.entry((topic.clone(), *p)).or_insert((None, String::new())).1.clone_from(&m.member_id);
            }
        }
    }
    let topics: BTreeSet<String> = partitions.keys().map(|(t, _)| t.clone()).collect();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for t in topics {
        let ps: Vec<i32> = partitions.keys().filter(|(x, _)| *x == t).map(|(_, p)| *p).collect();
        if let Ok(marks) = client.watermarks(&t, &ps).await {
            ends.extend(marks.into_iter().map(|(p, (_, end))| ((t.clone(), p), end)));
        }
    }
    if output == Output::Json {
        return emit_json(&describe_json(&description, &partitions, &ends));
    }
    let mut out = format!(
        "Group: {}\tState: {}\tProtocol: {}\tMembers: {}\n\n",
        description.group_id,
        description.state,
        if description.protocol.is_empty() { "-" } else { &description.protocol },
        description.members.len()
    );
    out.push_str(&offsets_table(&description, &partitions, &ends, output == Output::Wide));
    if !description.members.is_empty() {
        out.push('\n');
        out.push_str(&members_table(&description));
    }
    emit(&out)
}

fn lag(committed: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some((end? - committed?).max(0))
}

fn describe_json(
    description: &GroupDescription,
    partitions: &Partitions,
    ends: &BTreeMap<(String, i32), i64>,
) -> Value {
    let offsets: Vec<Value> = partitions
        .iter()
        .map(|((topic, p), (committed, member))| {
            let end = ends.get(&(topic.clone(), *p)).copied();
            let member = (!member.is_empty() && member != "-").then_some(member);
            json!({"topic": topic, "partition": p, "committed_offset": committed, "log_end_offset": end,
                   "lag": lag(*committed, end), "consumer_id": member})
        })
        .collect();
    let members: Vec<Value> = description
        .members
        .iter()
        .map(|m| {
            let assignment: serde_json::Map<String, Value> =
                m.assignment.iter().map(|(t, ps)| (t.clone(), json!(ps))).collect();
            json!({"member_id": m.member_id, "instance_id": m.group_instance_id, "client_id": m.client_id,
                   "host": m.client_host, "assignment": assignment})
        })
        .collect();
    json!({"group": description.group_id, "state": description.state, "protocol_type": description.protocol_type,
           "protocol": description.protocol, "members": members, "offsets": offsets})
}

fn offsets_table(
    description: &GroupDescription,
    partitions: &Partitions,
    ends: &BTreeMap<(String, i32), i64>,
    wide: bool,
) -> String {
    let rows: Vec<Vec<String>> = partitions
        .iter()
        .map(|((topic, p), (committed, member))| {
            let end = ends.get(&(topic.clone(), *p)).copied();
            let mut row = vec![
                topic.clone(),
                p.to_string(),
                committed.map_or("-".into(), |c| c.to_string()),
                end.map_or("-".into(), |e| e.to_string()),
                lag(*committed, end).map_or("-".into(), |l| l.to_string()),
                if member.is_empty() { "-".into() } else { member.clone() },
            ];
            if wide {
                let m = description.members.iter().find(|m| &m.member_id == member);
                row.push(m.map_or("-".into(), |m| m.client_id.clone()));
                row.push(m.map_or("-".into(), |m| m.client_host.clone()));
            }
            row
        })
        .collect();
    let mut header = vec!["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"];
    if wide {
        header.extend(["CLIENT-ID", "HOST"]);
    }
    table(&header, &rows)
}

fn members_table(description: &GroupDescription) -> String {
    let rows: Vec<Vec<String>> = description
        .members
        .iter()
        .map(|m| {
            let assignment: Vec<String> = m
                .assignment
                .iter()
                .map(|(t, ps)| format!("{t}:{}", ps.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")))
                .collect();
            vec![
                m.member_id.clone(),
                m.group_instance_id.clone().unwrap_or_else(|| "-".into()),
                m.client_id.clone(),
                m.client_host.clone(),
                if assignment.is_empty() { "-".into() } else { assignment.join(" ") },
            ]
        })
        .collect();
    table(&["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"], &rows)
}

async fn delete(client: &mut Client, groups: &[String]) -> CliResult {
    let mut first_error = None;
    for (group, result) in client.delete_groups(groups).await? {
        match result {
            Ok(()) => emitln(&format!("Deleted group {group}."))?,
            Err(e) => {
                let sentence = match e.code() {
                    Some(69) => format!("group '{group}' does not exist"),
                    Some(68) => format!("group '{group}' still has members and cannot be deleted"),
                    _ => e.to_string(),
                };
                first_error.get_or_insert(failed(sentence));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}
