//! `gregor storage`: a data dir formatted with a cluster id starts as a node of that
//! cluster; formatting twice is refused unless `--ignore-formatted`; a node started with
//! another cluster's `cluster.id` is refused with one sentence naming both ids.
#![allow(unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

fn gregor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor")).args(args).stdin(Stdio::null()).output().expect("gregor runs")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

#[test]
fn a_formatted_data_dir_starts_with_its_cluster_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("d1");
    let data = data.to_str().expect("utf-8 path");
    let id = stdout(&gregor(&["storage", "random-uuid"]));
    assert_eq!(id.len(), 22, "{id}");

    let formatted = stdout(&gregor(&["storage", "format", "-t", &id, "--node-id", "1", "--data-dir", data]));
    assert!(formatted.contains(&id), "{formatted}");
    let info = stdout(&gregor(&["storage", "info", "--node-id", "1", "--data-dir", data]));
    assert!(info.contains(&format!("Cluster id: {id}")) && info.contains("Node id: 1"), "{info}");

    let again = gregor(&["storage", "format", "-t", &id, "--node-id", "1", "--data-dir", data]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--ignore-formatted"));
    let ignored = stdout(&gregor(&["storage", "format", "-t", &id, "-g", "--node-id", "1", "--data-dir", data]));
    assert!(ignored.contains("already formatted"), "{ignored}");
    let bad = gregor(&["storage", "format", "-t", "not-a-uuid", "--data-dir", data]);
    assert_eq!(bad.status.code(), Some(1));

    // The node starts as a member of the formatted cluster.
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["serve", "--node-id", "1", "--data-dir", data, "--listen", &listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gregor runs");
    let mut banner = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut banner);
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains(&format!("cluster {id}")), "start line: {banner}");

    // Another cluster's id for this data dir is refused.
    let other = stdout(&gregor(&["storage", "random-uuid"]));
    let set = format!("cluster.id={other}");
    let refused = gregor(&["serve", "--node-id", "1", "--data-dir", data, "--listen", &listen, "--set", &set]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&id) && stderr.contains(&other), "{stderr}");
}
