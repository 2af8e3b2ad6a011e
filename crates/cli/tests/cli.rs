//! The `gregor` tools against a real broker started in-process on 127.0.0.1 (port 0):
//! every subcommand is run as the built binary, as a user would.
#![allow(unreachable_pub)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gregor_broker::{BrokerConfig, RunningBroker};
use serde_json::Value;

struct TestBroker {
    dir: tempfile::TempDir,
    broker: Option<RunningBroker>,
    bootstrap: String,
}

impl TestBroker {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = BrokerConfig::from_pairs([
            ("log.dirs", dir.path().to_str().expect("utf-8 path")),
            ("listeners", "PLAINTEXT://127.0.0.1:0"),
            ("group.initial.rebalance.delay.ms", "0"),
        ])
        .expect("config");
        let broker = gregor_broker::start(config).await.expect("broker starts");
        let bootstrap = broker.bootstrap_servers();
        Self { dir, broker: Some(broker), bootstrap }
    }

    /// Runs `gregor ARGS` against this broker, feeding `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_gregor(&self.bootstrap, args, stdin)
    }

    /// Runs `gregor ARGS`, asserts success, returns stdout.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "gregor {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    async fn stop(&mut self) -> PathBuf {
        self.broker.take().expect("running").shutdown().await.expect("clean shutdown");
        self.dir.path().to_owned()
    }
}

fn run_gregor(bootstrap: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .env("GREGOR_BOOTSTRAP", bootstrap)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gregor runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("gregor finishes")
}

/// Asserts a failure with exactly one `gregor: ...` line on stderr; returns that line.
fn one_sentence_failure(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got: {}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("gregor: "), "{stderr}");
    lines[0].to_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_create_list_describe_alter_delete() {
    let b = TestBroker::start().await;
    assert!(b
        .ok(&["topics", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000"], "")
        .contains("Created topic orders"));
    assert_eq!(b.ok(&["topics", "list"], "").lines().collect::<Vec<_>>(), vec!["orders"]);
    let described = b.ok(&["topics", "describe", "orders"], "");
    assert!(described.contains("PartitionCount: 3") && described.contains("retention.ms=3600000"), "{described}");
    assert_eq!(described.lines().filter(|l| l.starts_with(char::is_numeric)).count(), 3, "{described}");
    assert!(
        described.contains("LOG-START") && described.contains("LOG-END") && described.contains("SIZE"),
        "{described}"
    );
    b.ok(&["topics", "alter", "orders", "--partitions", "4"], "");
    assert!(b.ok(&["topics", "describe", "orders"], "").contains("PartitionCount: 4"));
    let shrink = one_sentence_failure(&b.run(&["topics", "alter", "orders", "--partitions", "2"], ""));
    assert!(shrink.contains("must be larger"), "{shrink}");
    let again = one_sentence_failure(&b.run(&["topics", "create", "orders"], ""));
    assert!(again.contains("TOPIC_ALREADY_EXISTS"), "{again}");
    assert!(b.ok(&["topics", "delete", "orders"], "").contains("Deleted topic orders"));
    assert_eq!(b.ok(&["topics", "list"], ""), "");
    let gone = one_sentence_failure(&b.run(&["topics", "describe", "orders"], ""));
    assert_eq!(gone, "gregor: topic 'orders' does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_lines_with_keys_and_headers_then_consume_as_json() {
    let b = TestBroker::start().await;
    b.ok(&["topics", "create", "events", "--partitions", "2"], "");
    let lines = "user-1:login\nuser-2:view\nuser-1:logout\n";
    let written =
        b.ok(&["produce", "events", "--key-separator", ":", "--header", "source=cli", "--compression", "gzip"], lines);
    assert_eq!(written.trim(), "3 messages written to events");
    let json_in =
        "{\"key\":\"user-3\",\"value\":\"buy\",\"headers\":{\"h\":\"v\"},\"partition\":1}\n{\"value\":\"no key\"}\n";
    assert!(b.ok(&["produce", "events", "--json", "--acks", "1"], json_in).contains("2 messages"));

    let out = b.ok(&["consume", "events", "--from-beginning", "--max-messages", "5", "--format", "json"], "");
    let records = json_lines(&out);
    assert_eq!(records.len(), 5);
    let got: BTreeSet<(String, String)> = records
        .iter()
        .map(|r| (r["key"].as_str().unwrap_or("null").to_owned(), r["value"].as_str().unwrap_or("").to_owned()))
        .collect();
    let want: BTreeSet<(String, String)> =
        [("user-1", "login"), ("user-2", "view"), ("user-1", "logout"), ("user-3", "buy"), ("null", "no key")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    assert_eq!(got, want);
    for r in records.iter().filter(|r| r["key"].as_str().is_some_and(|k| k.starts_with("user-") && k != "user-3")) {
        assert_eq!(r["headers"]["source"], "cli");
    }
    let user3 = records.iter().find(|r| r["key"] == "user-3").expect("user-3");
    assert_eq!((user3["partition"].as_i64(), user3["headers"]["h"].as_str()), (Some(1), Some("v")));
    // The same key always lands in the same partition (murmur2, like the Java client).
    let parts: BTreeSet<i64> =
        records.iter().filter(|r| r["key"] == "user-1").filter_map(|r| r["partition"].as_i64()).collect();
    assert_eq!(parts.len(), 1);

    let template = b.ok(
        &[
            "consume",
            "events",
            "--partition",
            "1",
            "--offset",
            "earliest",
            "--timeout",
            "1000",
            "--template",
            "{key}={value}@{partition}",
        ],
        "",
    );
    assert!(template.lines().all(|l| l.ends_with("@1")) && template.contains("user-3=buy@1"), "{template}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_the_last_n_and_from_a_time() {
    let b = TestBroker::start().await;
    b.ok(&["topics", "create", "ticks", "--partitions", "1"], "");
    b.ok(&["produce", "ticks"], "a\nb\nc\n");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let between = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    tokio::time::sleep(Duration::from_millis(30)).await;
    b.ok(&["produce", "ticks"], "d\ne\n");

    assert_eq!(b.ok(&["consume", "ticks", "--offset", "-2", "--timeout", "1000"], ""), "d\ne\n");
    assert_eq!(b.ok(&["consume", "ticks", "--offset", "1", "--max-messages", "2"], ""), "b\nc\n");
    let at = format!("@{between}");
    assert_eq!(b.ok(&["consume", "ticks", "--offset", &at, "--timeout", "1000"], ""), "d\ne\n");
    assert_eq!(
        b.ok(&["consume", "ticks", "--offset", "@2000-01-01T00:00:00Z", "--timeout", "1000"], ""),
        "a\nb\nc\nd\ne\n"
    );
    assert_eq!(b.ok(&["consume", "ticks", "--offset", "@2100-01-01T00:00:00Z", "--timeout", "500"], ""), "");
}

/// Joins `group` as a classic consumer through the client crate, so the group is active.
async fn join_group(bootstrap: &str, group: &str) -> gregor_client::Connection {
    use gregor_client::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use gregor_client::kafka_protocol::messages::{GroupId, JoinGroupRequest};
    use gregor_client::kafka_protocol::protocol::StrBytes;
    let mut conn =
        gregor_client::Connection::connect(bootstrap, "test-member", Duration::from_secs(10)).await.expect("connect");
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))]);
    let response = conn.send_version(&request, 3).await.expect("join");
    assert_eq!(response.error_code, 0);
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_commit_describe_reset_and_refuse_while_active() {
    let b = TestBroker::start().await;
    b.ok(&["topics", "create", "orders", "--partitions", "2"], "");
    let input: String = (0..6).map(|i| format!("{{\"value\":\"m{i}\",\"partition\":{}}}\n", i % 2)).collect();
    b.ok(&["produce", "orders", "--json"], &input);
    let first = b.ok(&["consume", "orders", "--group", "billing", "--from-beginning", "--max-messages", "4"], "");
    assert_eq!(first.lines().count(), 4);

    assert!(b.ok(&["groups", "list"], "").contains("billing"));
    let described = b.ok(&["groups", "describe", "billing"], "");
    assert!(described.contains("CURRENT-OFFSET") && described.contains("LAG"), "{described}");
    let lag: i64 = described
        .lines()
        .filter(|l| l.starts_with("orders"))
        .map(|l| l.split_whitespace().nth(4).and_then(|x| x.parse::<i64>().ok()).expect("lag column"))
        .sum();
    assert_eq!(lag, 2, "{described}");

    let plan = b.ok(&["groups", "reset-offsets", "billing", "--all-topics", "--to-earliest"], "");
    assert!(plan.contains("NEW-OFFSET") && plan.contains("Dry run"), "{plan}");
    assert_eq!(b.ok(&["groups", "describe", "billing"], ""), described, "a dry run changes nothing");
    let done = b.ok(&["groups", "reset-offsets", "billing", "--topic", "orders", "--to-earliest", "--execute"], "");
    assert!(done.contains("reset"), "{done}");
    let after = b.ok(&["groups", "describe", "billing"], "");
    let currents: Vec<&str> =
        after.lines().filter(|l| l.starts_with("orders")).filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(currents, vec!["0", "0"], "{after}");
    let again = b.ok(&["consume", "orders", "--group", "billing", "--timeout", "1500"], "");
    assert_eq!(again.lines().count(), 6, "{again}");

    let _member = join_group(&b.bootstrap, "billing").await;
    let refused = one_sentence_failure(
        &b.run(&["groups", "reset-offsets", "billing", "--all-topics", "--to-latest", "--execute"], ""),
    );
    assert!(refused.contains("while it is active"), "{refused}");
    assert!(b.ok(&["groups", "describe", "billing"], "").contains("test-member"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_configs_describe() {
    let b = TestBroker::start().await;
    b.ok(&["topics", "create", "logs", "--config", "retention.ms=60000"], "");
    let cluster = b.ok(&["cluster", "describe"], "");
    assert!(cluster.contains("Cluster id: ") && cluster.contains("Controller: 0"), "{cluster}");
    assert!(cluster.contains("ApiVersions") && cluster.contains("Fetch"), "{cluster}");
    let configs = b.ok(&["configs", "describe", "--topic", "logs"], "");
    let line = configs.lines().find(|l| l.starts_with("retention.ms")).expect("retention.ms listed");
    assert!(line.contains("60000") && line.contains("DYNAMIC_TOPIC_CONFIG"), "{line}");
    assert!(b.ok(&["configs", "describe", "--broker", "0"], "").contains("log.dirs"));
    // Brokers without IncrementalAlterConfigs refuse in one sentence; Gregor serves it.
    let alter = b.run(&["configs", "alter", "--topic", "logs", "--set", "retention.ms=120000"], "");
    if alter.status.success() {
        let after = b.ok(&["configs", "describe", "--topic", "logs"], "");
        assert!(after.lines().any(|l| l.starts_with("retention.ms") && l.contains("120000")), "{after}");
    } else {
        let _ = one_sentence_failure(&alter);
    }
    let bad = one_sentence_failure(&b.run(&["configs", "alter", "--topic", "logs", "--set", "no.such.config=1"], ""));
    assert!(bad.contains("cannot alter the configs of topic 'logs'") || bad.contains("does not support"), "{bad}");
}

fn partition_dir(data: &Path, topic: &str) -> PathBuf {
    data.join(format!("{topic}-0"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_log_reads_segments_and_reports_a_torn_tail() {
    let mut b = TestBroker::start().await;
    b.ok(&["topics", "create", "dump", "--partitions", "1"], "");
    b.ok(&["produce", "dump", "--key-separator", "=", "--compression", "lz4"], "k1=hello\nk2=world\n");
    b.ok(&["produce", "dump"], "plain\n");
    let data = b.stop().await;
    let dir = partition_dir(&data, "dump");
    let out = b.ok(&["dump-log", dir.to_str().expect("utf-8")], "");
    assert!(out.contains("baseOffset: 0 ") && out.contains("compresscodec: lz4"), "{out}");
    assert!(out.contains("baseOffset: 2 lastOffset: 2 count: 1") && out.contains("isvalid: true"), "{out}");
    assert!(!out.contains("PROBLEM"), "{out}");
    let log = dir.join("00000000000000000000.log");
    let deep = b.ok(&["dump-log", log.to_str().expect("utf-8"), "--print-data-log"], "");
    assert!(deep.contains("| offset: 1") && deep.contains("key: k2 payload: world"), "{deep}");

    let copy = tempfile::tempdir().expect("tempdir");
    let torn = copy.path().join("00000000000000000000.log");
    let bytes = std::fs::read(&log).expect("segment");
    std::fs::write(&torn, &bytes[..bytes.len() - 5]).expect("write copy");
    let out = b.run(&["dump-log", torn.to_str().expect("utf-8")], "");
    let sentence = one_sentence_failure(&out);
    assert!(sentence.contains("torn tail"), "{sentence}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("baseOffset: 0"), "whole batches are still printed");

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    std::fs::write(&torn, &flipped).expect("write copy");
    let out = b.run(&["dump-log", torn.to_str().expect("utf-8")], "");
    assert!(one_sentence_failure(&out).contains("CRC"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("isvalid: false"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_print_one_sentence_and_fail() {
    let b = TestBroker::start().await;
    b.ok(&["topics", "create", "known"], "");
    assert_eq!(
        one_sentence_failure(&b.run(&["consume", "missing", "--timeout", "100"], "")),
        "gregor: topic 'missing' does not exist"
    );
    assert_eq!(one_sentence_failure(&b.run(&["produce", "missing"], "x\n")), "gregor: topic 'missing' does not exist");
    let bad = b.run(&["consume", "known", "--offset", "yesterday"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(one_sentence_failure(&bad).contains("--offset"));
    let no_sep = one_sentence_failure(&b.run(&["produce", "known", "--key-separator", ":"], "novalue\n"));
    assert!(no_sep.contains("no key separator"), "{no_sep}");
    let down = run_gregor("127.0.0.1:1", &["topics", "list", "--request-timeout", "1000"], "");
    assert_eq!(one_sentence_failure(&down), "gregor: cannot connect to 127.0.0.1:1: connection refused");
    assert!(one_sentence_failure(&b.run(&["groups", "describe", "nobody"], "")).contains("does not exist"));
    assert!(one_sentence_failure(&b.run(&["dump-log", "/nonexistent/00000000000000000000.log"], ""))
        .contains("cannot read"));
}
