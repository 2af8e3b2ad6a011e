//! `gregor cluster describe`: cluster id, controller, brokers, and the API versions the
//! bootstrap broker supports (with the version this client uses for each).

use clap::{Args, Subcommand};
use gregor_client::api_name;

use crate::common::{connect, emit, run_async, table, ConnectArgs};

#[derive(Debug, Args)]
#[command(after_help = "Example:
  gregor cluster describe --bootstrap-server localhost:9092")]
pub(crate) struct ClusterArgs {
    #[command(flatten)]
    conn: ConnectArgs,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Cluster id, controller, brokers and supported API versions.
    Describe,
}

pub(crate) fn run(args: ClusterArgs) -> Result<(), String> {
    run_async(async move {
        let mut client = connect(&args.conn).await?;
        let ClusterCommand::Describe = args.command;
        let cluster = client.describe_cluster().await?;
        let mut out = format!("Cluster id: {}\nController: {}\n\n", cluster.cluster_id, cluster.controller_id);
        let brokers: Vec<Vec<String>> = cluster
            .brokers
            .iter()
            .map(|b| {
                vec![
                    b.node_id.to_string(),
                    b.host.clone(),
                    b.port.to_string(),
                    b.rack.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(&["ID", "HOST", "PORT", "RACK"], &brokers));
        let conn = client.any();
        out.push_str(&format!("\nAPI versions of {}:\n", conn.addr()));
        let apis: Vec<Vec<String>> = conn
            .api_versions()
            .map(|a| vec![a.api_key.to_string(), api_name(a.api_key), a.min.to_string(), a.max.to_string()])
            .collect();
        out.push_str(&table(&["KEY", "API", "MIN", "MAX"], &apis));
        emit(&out)
    })
}
