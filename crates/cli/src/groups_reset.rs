//! `gregor groups reset-offsets`: computes new committed offsets for a group (a plan,
//! shown by default) and commits them with `--execute`, refusing while the group is active.

use std::collections::BTreeMap;

use clap::{ArgGroup, Args};
use gregor_client::Client;

use crate::common::{emit, failed, now_ms, parse_datetime, parse_duration, table, usage, CliResult};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("strategy").required(true).args([
    "to_earliest", "to_latest", "to_offset", "to_datetime", "by_duration", "shift_by"
])))]
#[command(group(ArgGroup::new("scope").required(true).args(["all_topics", "topic"])))]
#[command(group(ArgGroup::new("mode").args(["dry_run", "execute"])))]
pub(crate) struct ResetArgs {
    /// Group id.
    group: String,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    all_topics: bool,
    /// TOPIC or TOPIC:P1,P2 (repeatable).
    #[arg(long, value_name = "TOPIC[:PARTITIONS]")]
    topic: Vec<String>,
    /// To the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (kept within the log).
    #[arg(long, value_name = "N")]
    to_offset: Option<i64>,
    /// To the first offset at or after this time (2026-11-21T10:00:00Z).
    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    /// To the first offset at or after now minus this duration (PT1H, 1h30m, 2d).
    #[arg(long, value_name = "DURATION")]
    by_duration: Option<String>,
    /// Move the committed offset by N (negative: back), kept within the log.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Only show the plan (the default).
    #[arg(long)]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
}

/// The target of a reset, in Kafka's words.
#[derive(Debug, Clone, Copy)]
enum Strategy {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
    Shift(i64),
}

fn strategy(args: &ResetArgs) -> CliResult<Strategy> {
    Ok(if args.to_earliest {
        Strategy::Earliest
    } else if args.to_latest {
        Strategy::Latest
    } else if let Some(n) = args.to_offset {
        Strategy::Offset(n)
    } else if let Some(when) = &args.to_datetime {
        Strategy::Time(parse_datetime(when)?)
    } else if let Some(d) = &args.by_duration {
        Strategy::Time(now_ms() - parse_duration(d)?)
    } else if let Some(n) = args.shift_by {
        Strategy::Shift(n)
    } else {
        return Err(usage("reset-offsets needs one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration, --shift-by"));
    })
}

/// Parses `TOPIC` or `TOPIC:0,1,2` and checks the topic and partitions exist.
pub(crate) async fn topic_partitions(client: &mut Client, spec: &str) -> CliResult<(String, Vec<i32>)> {
    let (name, list) = match spec.split_once(':') {
        Some((n, l)) => (n, Some(l)),
        None => (spec, None),
    };
    let info = client.topic(name).await?;
    let all: Vec<i32> = info.partitions.iter().map(|p| p.partition).collect();
    let Some(list) = list else { return Ok((name.to_owned(), all)) };
    let mut chosen = Vec::new();
    for p in list.split(',').filter(|p| !p.is_empty()) {
        let p: i32 = p.trim().parse().map_err(|_| usage(format!("'{spec}' is not TOPIC or TOPIC:P1,P2")))?;
        if !all.contains(&p) {
            return Err(usage(format!("topic '{name}' has no partition {p}")));
        }
        chosen.push(p);
    }
    Ok((name.to_owned(), chosen))
}

pub(crate) async fn run(client: &mut Client, args: ResetArgs) -> CliResult {
    let strategy = strategy(&args)?;
    let group = args.group.as_str();
    let description = client.describe_group(group).await?;
    if description.is_active() {
        return Err(failed(format!(
            "cannot reset the offsets of group '{group}' while it is active (state {}, {} members); stop its consumers first",
            description.state,
            description.members.len()
        )));
    }
    let committed: BTreeMap<(String, i32), i64> =
        client.committed_offsets(group, None).await?.into_iter().map(|c| ((c.topic, c.partition), c.offset)).collect();
    let mut targets: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if args.all_topics {
        for (t, p) in committed.keys() {
            targets.entry(t.clone()).or_default().push(*p);
        }
    }
    for spec in &args.topic {
        let (t, ps) = topic_partitions(client, spec).await?;
        targets.entry(t).or_default().extend(ps);
    }
    if targets.is_empty() {
        return Err(failed(format!("group '{group}' has no committed offsets to reset; name topics with --topic")));
    }
    let plan = plan(client, &targets, &committed, strategy).await?;
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(t, p, old, new)| {
            vec![t.clone(), p.to_string(), old.map_or("-".into(), |o| o.to_string()), new.to_string()]
        })
        .collect();
    let mut out = table(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"], &rows);
    if args.execute {
        let offsets: Vec<(String, i32, i64)> = plan.into_iter().map(|(t, p, _, new)| (t, p, new)).collect();
        client.commit_offsets(group, &offsets).await?;
        out.push_str(&format!("\nOffsets of group {group} reset.\n"));
    } else {
        out.push_str("\nDry run: nothing changed. Add --execute to commit these offsets.\n");
    }
    emit(&out)
}

type Plan = Vec<(String, i32, Option<i64>, i64)>;

async fn plan(
    client: &mut Client,
    targets: &BTreeMap<String, Vec<i32>>,
    committed: &BTreeMap<(String, i32), i64>,
    strategy: Strategy,
) -> CliResult<Plan> {
    let mut out = Vec::new();
    for (topic, partitions) in targets {
        let mut partitions = partitions.clone();
        partitions.sort_unstable();
        partitions.dedup();
        let marks = client.watermarks(topic, &partitions).await?;
        let by_time = match strategy {
            Strategy::Time(ms) => {
                let q: Vec<(i32, i64)> = partitions.iter().map(|&p| (p, ms)).collect();
                client.list_offsets(topic, &q, 0).await?
            }
            _ => BTreeMap::new(),
        };
        for p in partitions {
            let (start, end) = marks.get(&p).copied().unwrap_or((0, 0));
            let current = committed.get(&(topic.clone(), p)).copied();
            let new = match strategy {
                Strategy::Earliest => start,
                Strategy::Latest => end,
                Strategy::Offset(n) => n.clamp(start, end),
                Strategy::Time(_) => by_time.get(&p).map(|o| o.offset).filter(|o| *o >= 0).unwrap_or(end),
                Strategy::Shift(n) => current.unwrap_or(end).saturating_add(n).clamp(start, end),
            };
            out.push((topic.clone(), p, current, new));
        }
    }
    Ok(out)
}
