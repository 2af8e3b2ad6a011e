//! `gregor local-cluster`: N combined nodes (broker and controller) as separate child
//! processes on loopback, each with its own data dir and log file, forming one cluster
//! through their metadata quorum. Stops them all on Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  gregor local-cluster --nodes 3
      node 1: clients 127.0.0.1:19092, controller 127.0.0.1:19093, data ./gregor-cluster/node-1
      node 2: clients 127.0.0.1:19094, controller 127.0.0.1:19095, ...
  gregor local-cluster --nodes 5 --data-dir /tmp/c5 --base-port 29092
  gregor --bootstrap-server 127.0.0.1:19092 cluster describe")]
pub(crate) struct LocalClusterArgs {
    /// Number of nodes, each a broker and a voter of the metadata quorum.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// Parent of the nodes' data dirs (node-1, node-2, ...) and log files.
    #[arg(long, value_name = "DIR", default_value = "gregor-cluster")]
    data_dir: PathBuf,
    /// Client port of node 1; node i listens for clients on BASE+2(i-1) and for
    /// controllers on the port after it.
    #[arg(long, value_name = "PORT", default_value_t = 19092)]
    base_port: u16,
    /// Extra config for every node, as `gregor serve --set` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

struct Node {
    id: u16,
    client_port: u16,
    log: PathBuf,
    child: Child,
}

pub(crate) fn run(args: LocalClusterArgs) -> Result<(), String> {
    let ports: Vec<(u16, u16, u16)> = (1..=args.nodes)
        .map(|id| {
            let client = u32::from(args.base_port) + 2 * u32::from(id - 1);
            let client = u16::try_from(client)
                .map_err(|_| format!("--base-port {} leaves no room for {} nodes", args.base_port, args.nodes))?;
            let controller =
                client.checked_add(1).ok_or_else(|| format!("--base-port {} is too high", args.base_port))?;
            Ok((id, client, controller))
        })
        .collect::<Result<_, String>>()?;
    let voters: Vec<String> = ports.iter().map(|(id, _, c)| format!("{id}@127.0.0.1:{c}")).collect();
    let voters = voters.join(",");
    std::fs::create_dir_all(&args.data_dir).map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the gregor binary: {e}"))?;
    let mut nodes = Vec::new();
    for (id, client, controller) in ports {
        match spawn(&exe, &args, id, client, controller, &voters) {
            Ok(node) => nodes.push(node),
            Err(e) => {
                stop(&mut nodes);
                return Err(e);
            }
        }
    }
    if let Err(e) = wait_started(&mut nodes) {
        stop(&mut nodes);
        return Err(e);
    }
    let bootstrap: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.client_port)).collect();
    println!("Gregor local cluster of {} nodes, bootstrap.servers={}", nodes.len(), bootstrap.join(","));
    for n in &nodes {
        println!("node {}: pid {}, clients 127.0.0.1:{}, log {}", n.id, n.child.id(), n.client_port, n.log.display());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(crate::serve::wait_for_signal());
    stop(&mut nodes);
    Ok(())
}

fn spawn(
    exe: &Path,
    args: &LocalClusterArgs,
    id: u16,
    client: u16,
    controller: u16,
    voters: &str,
) -> Result<Node, String> {
    let dir = args.data_dir.join(format!("node-{id}"));
    let log = args.data_dir.join(format!("node-{id}.log"));
    let file = std::fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .arg("serve")
        .args(["--node-id", &id.to_string()])
        .args(["--listen", &format!("127.0.0.1:{client}")])
        .args(["--controller-listen", &format!("127.0.0.1:{controller}")])
        .args(["--controller-quorum", voters])
        .arg("--data-dir")
        .arg(&dir);
    for kv in &args.set {
        command.args(["--set", kv]);
    }
    // One console per machine: node 1 takes the default HTTP port, the others none
    // (unless --set http.listeners says otherwise).
    if id != 1 && !args.set.iter().any(|kv| kv.starts_with("http.listeners=")) {
        command.args(["--http-listen", "none"]);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start node {id}: {e}"))?;
    Ok(Node { id, client_port: client, log, child })
}

/// Waits until every node printed its start line (it has joined the quorum).
fn wait_started(nodes: &mut [Node]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in nodes.iter_mut() {
        loop {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            if text.lines().any(|l| l.starts_with("Gregor ") && l.contains(" listening on ")) {
                break;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                return Err(format!("node {} exited ({status}) before it started: {}", node.id, tail.join(" | ")));
            }
            if Instant::now() > deadline {
                return Err(format!("node {} did not start within 60 s (see {})", node.id, node.log.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// SIGTERM to every node (a clean shutdown each), then waits for them.
fn stop(nodes: &mut [Node]) {
    for node in nodes.iter() {
        if let Some(pid) = rustix::process::Pid::from_raw(node.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    for node in nodes.iter_mut() {
        let _ = node.child.wait();
    }
}
