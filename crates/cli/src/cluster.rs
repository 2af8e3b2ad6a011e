//! `gregor cluster describe`: cluster id, controller, brokers, and the API versions the
//! bootstrap broker supports (with the version this client uses for each).
//! `gregor cluster quorum`: the metadata quorum (kafka-metadata-quorum.sh describe
//! --status and --replication in one).

use clap::{Args, Subcommand};
use gregor_client::{api_name, ApiRange, ClusterDescription, QuorumDescription};
use serde_json::{json, Value};

use crate::common::{connect, emit, emit_json, run_async, table, CliError, Global, Output};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor cluster describe --bootstrap-server localhost:9092
  gregor cluster quorum                  # leader, epoch, high watermark, each voter's lag
  gregor cluster quorum -o json | jq .leader_id
  gregor cluster add-controller --controller-id 4 --controller-address 10.0.0.4:9093
  gregor cluster remove-controller --controller-id 3")]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller, brokers and supported API versions.
    Describe,
    /// The metadata quorum: active controller, epoch, high watermark, voters and lag.
    Quorum,
    /// Make a running controller a voter of the quorum (KIP-853). Start it first (it
    /// joins as an observer and catches up); this returns once it votes.
    AddController {
        /// Its `node.id`.
        #[arg(long)]
        controller_id: i32,
        /// Its controller listener, HOST:PORT.
        #[arg(long, value_name = "HOST:PORT")]
        controller_address: String,
    },
    /// Remove a voter from the quorum (KIP-853), e.g. a failed machine's.
    RemoveController {
        /// Its `node.id`.
        #[arg(long)]
        controller_id: i32,
    },
}

pub(crate) fn run(args: ClusterArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        match &args.command {
            ClusterCommand::AddController { controller_id, controller_address } => {
                let (host, port) = controller_address
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.trim_start_matches('[').trim_end_matches(']'), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| {
                        CliError::Usage(format!("--controller-address expects HOST:PORT, got '{controller_address}'"))
                    })?;
                client.add_raft_voter(*controller_id, host, port).await?;
                return emit(&format!("Controller {controller_id} is a voter of the metadata quorum"));
            }
            ClusterCommand::RemoveController { controller_id } => {
                client.remove_raft_voter(*controller_id).await?;
                return emit(&format!("Controller {controller_id} is no longer a voter of the metadata quorum"));
            }
            _ => {}
        }
        if let ClusterCommand::Quorum = args.command {
            let quorum = client.describe_quorum().await?;
            return match global.output {
                Output::Json => emit_json(&quorum_json(&quorum)),
                _ => emit(&render_quorum(&quorum)),
            };
        }
        let cluster = client.describe_cluster().await?;
        // The quorum in brief, where the broker answers DescribeQuorum.
        let quorum = client.describe_quorum().await.ok();
        let conn = client.any();
        let apis: Vec<ApiRange> = conn.api_versions().copied().collect();
        let addr = conn.addr().to_owned();
        match global.output {
            Output::Json => {
                let mut value = json(&cluster, &addr, &apis);
                value["quorum"] = quorum.as_ref().map_or(Value::Null, quorum_json);
                emit_json(&value)
            }
            output => {
                let mut text = render(&cluster, &addr, &apis, output == Output::Wide);
                if let Some(q) = &quorum {
                    // After the "Controller:" line (the first blank line ends the header).
                    text = text.replacen("\n\n", &format!("\n{}\n", quorum_line(q)), 1);
                }
                emit(&text)
            }
        }
    })
}

/// Tables of brokers and API versions; `wide` marks the controller and adds endpoints.
fn render(cluster: &ClusterDescription, addr: &str, apis: &[ApiRange], wide: bool) -> String {
    let mut out = format!("Cluster id: {}\nController: {}\n\n", cluster.cluster_id, cluster.controller_id);
    let brokers: Vec<Vec<String>> = cluster
        .brokers
        .iter()
        .map(|b| {
            let mut row = vec![
                b.node_id.to_string(),
                b.host.clone(),
                b.port.to_string(),
                b.rack.clone().unwrap_or_else(|| "-".into()),
                if b.fenced { "fenced".into() } else { "-".into() },
                b.epoch.map_or_else(|| "-".into(), |e| e.to_string()),
            ];
            if wide {
                row.push(b.addr());
                row.push(if b.node_id == cluster.controller_id { "yes".into() } else { "no".into() });
            }
            row
        })
        .collect();
    let mut header = vec!["ID", "HOST", "PORT", "RACK", "FENCED", "EPOCH"];
    if wide {
        header.extend(["ENDPOINT", "CONTROLLER"]);
    }
    out.push_str(&table(&header, &brokers));
    out.push_str(&format!("\nAPI versions of {addr}:\n"));
    let apis: Vec<Vec<String>> = apis
        .iter()
        .map(|a| vec![a.api_key.to_string(), api_name(a.api_key), a.min.to_string(), a.max.to_string()])
        .collect();
    out.push_str(&table(&["KEY", "API", "MIN", "MAX"], &apis));
    out
}

fn json(cluster: &ClusterDescription, addr: &str, apis: &[ApiRange]) -> Value {
    let brokers: Vec<Value> = cluster
        .brokers
        .iter()
        .map(|b| {
            json!({"id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack, "fenced": b.fenced, "epoch": b.epoch})
        })
        .collect();
    let apis: Vec<Value> = apis
        .iter()
        .map(|a| json!({"key": a.api_key, "name": api_name(a.api_key), "min_version": a.min, "max_version": a.max}))
        .collect();
    json!({"cluster_id": cluster.cluster_id, "controller": cluster.controller_id, "brokers": brokers,
           "api_versions": {"broker": addr, "apis": apis}})
}

/// One line on the quorum for `cluster describe`: the active controller and the voters.
fn quorum_line(quorum: &QuorumDescription) -> String {
    let ids = |list: &[gregor_client::QuorumReplica]| list.iter().map(|v| v.node_id.to_string()).collect::<Vec<_>>();
    format!(
        "Active controller: {} (epoch {}), voters [{}], observers [{}]\n",
        quorum.leader_id,
        quorum.leader_epoch,
        ids(&quorum.voters).join(","),
        ids(&quorum.observers).join(",")
    )
}

/// Kafka's `kafka-metadata-quorum.sh describe --status` then `--replication`.
fn render_quorum(quorum: &QuorumDescription) -> String {
    let mut out = format!(
        "LeaderId: {}\nLeaderEpoch: {}\nHighWatermark: {}\nCurrentVoters: [{}]\nCurrentObservers: [{}]\n\n",
        quorum.leader_id,
        quorum.leader_epoch,
        quorum.high_watermark,
        quorum.voters.iter().map(|v| v.node_id.to_string()).collect::<Vec<_>>().join(","),
        quorum.observers.iter().map(|v| v.node_id.to_string()).collect::<Vec<_>>().join(","),
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let ago = |ts: i64| if ts < 0 { "-".to_owned() } else { format!("{} ms ago", (now - ts).max(0)) };
    let rows: Vec<Vec<String>> = quorum
        .voters
        .iter()
        .map(|r| (r, "Voter"))
        .chain(quorum.observers.iter().map(|r| (r, "Observer")))
        .map(|(r, kind)| {
            let status = if r.node_id == quorum.leader_id { "Leader" } else { kind };
            let lag = if r.log_end_offset < 0 {
                "-".to_owned()
            } else {
                (quorum.high_watermark - r.log_end_offset).max(0).to_string()
            };
            vec![
                r.node_id.to_string(),
                r.endpoint.clone().unwrap_or_else(|| "-".into()),
                r.log_end_offset.to_string(),
                lag,
                ago(r.last_fetch_timestamp),
                ago(r.last_caught_up_timestamp),
                status.to_owned(),
            ]
        })
        .collect();
    out.push_str(&table(
        &["NODE", "ENDPOINT", "LOG-END-OFFSET", "LAG", "LAST-FETCH", "LAST-CAUGHT-UP", "STATUS"],
        &rows,
    ));
    out
}

fn quorum_json(quorum: &QuorumDescription) -> Value {
    let replica = |r: &gregor_client::QuorumReplica| {
        json!({"node_id": r.node_id, "endpoint": r.endpoint, "log_end_offset": r.log_end_offset,
               "last_fetch_timestamp": r.last_fetch_timestamp, "last_caught_up_timestamp": r.last_caught_up_timestamp})
    };
    json!({"leader_id": quorum.leader_id, "leader_epoch": quorum.leader_epoch, "high_watermark": quorum.high_watermark,
           "voters": quorum.voters.iter().map(replica).collect::<Vec<_>>(),
           "observers": quorum.observers.iter().map(replica).collect::<Vec<_>>()})
}
