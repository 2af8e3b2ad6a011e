//! `gregor cluster describe`: cluster id, controller, brokers, and the API versions the
//! bootstrap broker supports (with the version this client uses for each).

use clap::{Args, Subcommand};
use gregor_client::{api_name, ApiRange, ClusterDescription};
use serde_json::{json, Value};

use crate::common::{connect, emit, emit_json, run_async, table, Global, Output};

#[derive(Debug, Args)]
#[command(after_help = "Example:
  gregor cluster describe --bootstrap-server localhost:9092")]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller, brokers and supported API versions.
    Describe,
}

pub(crate) fn run(args: ClusterArgs, global: &Global) -> Result<(), String> {
    let global = global.clone();
    run_async(async move {
        let mut client = connect(&global.conn).await?;
        let ClusterCommand::Describe = args.command;
        let cluster = client.describe_cluster().await?;
        let conn = client.any();
        let apis: Vec<ApiRange> = conn.api_versions().copied().collect();
        let addr = conn.addr().to_owned();
        match global.output {
            Output::Json => emit_json(&json(&cluster, &addr, &apis)),
            output => emit(&render(&cluster, &addr, &apis, output == Output::Wide)),
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
            ];
            if wide {
                row.push(b.addr());
                row.push(if b.node_id == cluster.controller_id { "yes".into() } else { "no".into() });
            }
            row
        })
        .collect();
    let mut header = vec!["ID", "HOST", "PORT", "RACK"];
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
        .map(|b| json!({"id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack}))
        .collect();
    let apis: Vec<Value> = apis
        .iter()
        .map(|a| json!({"key": a.api_key, "name": api_name(a.api_key), "min_version": a.min, "max_version": a.max}))
        .collect();
    json!({"cluster_id": cluster.cluster_id, "controller": cluster.controller_id, "brokers": brokers,
           "api_versions": {"broker": addr, "apis": apis}})
}
