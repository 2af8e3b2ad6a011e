//! The `gregor` tools against a real broker started in-process on 127.0.0.1 (port 0):
//! every subcommand is run as the built binary, as a user would.
#![allow(unreachable_pub)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gregor_broker::{BrokerConfig, RunningBroker};
use serde_json::{json, Value};

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

/// Runs `gregor ARGS` with `GREGOR_BOOTSTRAP` pointing nowhere, so only the flags in
/// `args` can reach the broker; asserts success and returns stdout.
fn ok_with_flags(args: &[&str]) -> String {
    let out = run_gregor("127.0.0.1:1", args, "");
    assert!(out.status.success(), "gregor {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Sum of the LAG column of `groups describe` table output.
fn total_lag(described: &str, topic: &str) -> i64 {
    described
        .lines()
        .filter(|l| l.starts_with(topic))
        .map(|l| l.split_whitespace().nth(4).and_then(|x| x.parse::<i64>().ok()).expect("lag column"))
        .sum()
}

/// The CLI tour of seed 004 ("CLI команды для экскурсии"), kafka-*.sh → gregor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_cli_tour_translated_to_gregor() {
    let b = TestBroker::start().await;
    tour_topics(&b.bootstrap);
    let values = tour_produce_consume(&b);
    tour_groups(&b, &values).await;
}

/// kafka-topics.sh --create / --describe, with the flags before and after the subcommand.
fn tour_topics(bs: &str) {
    // kafka-topics.sh --create --topic demo-topic --partitions 3 --replication-factor 1
    let created = ok_with_flags(&[
        "--bootstrap-server",
        bs,
        "topics",
        "create",
        "demo-topic",
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    assert!(created.contains("Created topic demo-topic"), "{created}");
    // kafka-topics.sh --describe: PartitionCount, ReplicationFactor; per partition leader, replicas, ISR.
    let described = ok_with_flags(&["topics", "describe", "demo-topic", "--bootstrap-server", bs]);
    assert!(described.contains("Topic: demo-topic") && described.contains("PartitionCount: 3"), "{described}");
    assert!(described.contains("ReplicationFactor: 1"), "{described}");
    let rows: Vec<Vec<&str>> =
        described.lines().filter(|l| l.starts_with(char::is_numeric)).map(|l| l.split_whitespace().collect()).collect();
    let got: Vec<[&str; 4]> = rows.iter().map(|r| [r[0], r[1], r[2], r[3]]).collect();
    assert_eq!(got, vec![["0", "0", "0", "0"], ["1", "0", "0", "0"], ["2", "0", "0", "0"]], "{described}");
    let json: Value = serde_json::from_str(&ok_with_flags(&[
        "--bootstrap-server",
        bs,
        "--output",
        "json",
        "topics",
        "describe",
        "demo-topic",
    ]))
    .expect("one JSON document");
    let partitions = json[0]["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 3);
    for p in partitions {
        assert_eq!((&p["leader"], &p["replicas"], &p["isr"]), (&json!(0), &json!([0]), &json!([0])), "{p}");
    }
}

/// kafka-console-producer.sh, then kafka-console-consumer.sh with partition and offset
/// printed; returns the values read.
fn tour_produce_consume(b: &TestBroker) -> BTreeSet<String> {
    // kafka-console-producer.sh: one record per line (keys spread them over partitions).
    let lines: String = (0..9).map(|i| format!("k{i}:v{i}\n")).collect();
    assert_eq!(
        b.ok(&["produce", "demo-topic", "--key-separator", ":"], &lines).trim(),
        "9 messages written to demo-topic"
    );
    // kafka-console-consumer.sh --from-beginning --property print.partition=true --property print.offset=true
    let printed = b.ok(
        &[
            "consume",
            "demo-topic",
            "--from-beginning",
            "--max-messages",
            "9",
            "--template",
            "{partition}\t{offset}\t{value}",
        ],
        "",
    );
    let mut seen: Vec<(i64, i64, String)> = printed
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].parse().expect("partition"), f[1].parse().expect("offset"), f[2].to_owned())
        })
        .collect();
    seen.sort();
    assert_eq!(seen.len(), 9, "{printed}");
    assert!(seen.iter().map(|s| s.0).collect::<BTreeSet<_>>().len() > 1, "keys spread: {printed}");
    for part in 0..3 {
        let offsets: Vec<i64> = seen.iter().filter(|s| s.0 == part).map(|s| s.1).collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>(), "offsets of partition {part}: {printed}");
    }
    let values: BTreeSet<String> = seen.iter().map(|s| s.2.clone()).collect();

    values
}

/// kafka-consumer-groups.sh --list / --describe / --reset-offsets, then reading again.
async fn tour_groups(b: &TestBroker, values: &BTreeSet<String>) {
    // A group that consumed part of the topic, then kafka-consumer-groups.sh --list / --describe.
    b.ok(&["consume", "demo-topic", "--group", "my-group", "--from-beginning", "--max-messages", "6"], "");
    assert!(b.ok(&["groups", "list"], "").lines().any(|l| l.starts_with("my-group")));
    let described = b.ok(&["groups", "describe", "my-group"], "");
    assert!(described.contains("LOG-END-OFFSET") && described.contains("LAG"), "{described}");
    assert_eq!(total_lag(&described, "demo-topic"), 3, "{described}");
    let json: Value =
        serde_json::from_str(&b.ok(&["groups", "describe", "my-group", "-o", "json"], "")).expect("one JSON document");
    let lag: i64 = json["offsets"].as_array().expect("offsets").iter().filter_map(|o| o["lag"].as_i64()).sum();
    assert_eq!(lag, 3, "{json}");

    // kafka-consumer-groups.sh --reset-offsets --to-earliest: plan first, then --execute.
    let reset = ["groups", "reset-offsets", "my-group", "--topic", "demo-topic", "--to-earliest"];
    let plan = b.ok(&reset, "");
    assert!(plan.contains("NEW-OFFSET") && plan.contains("Dry run"), "{plan}");
    assert_eq!(b.ok(&["groups", "describe", "my-group"], ""), described, "a dry run changes nothing");
    b.ok(&[&reset[..], &["--execute"]].concat(), "");
    assert_eq!(total_lag(&b.ok(&["groups", "describe", "my-group"], ""), "demo-topic"), 9);
    // Consuming again starts from the reset point: every record once more.
    let again = b.ok(&["consume", "demo-topic", "--group", "my-group", "--timeout", "1500"], "");
    assert_eq!(&again.lines().map(str::to_owned).collect::<BTreeSet<_>>(), values, "{again}");
    assert_eq!(again.lines().count(), 9, "{again}");
    assert_eq!(total_lag(&b.ok(&["groups", "describe", "my-group"], ""), "demo-topic"), 0);

    // An active group: reset is refused in one sentence; wide output shows members' hosts.
    let _member = join_group(&b.bootstrap, "my-group").await;
    let refused = one_sentence_failure(&b.run(&[&reset[..], &["--execute"]].concat(), ""));
    assert!(refused.contains("while it is active"), "{refused}");
    let wide = b.ok(&["--output", "wide", "groups", "describe", "my-group"], "");
    assert!(wide.contains("test-member") && wide.contains("127.0.0.1") && wide.contains("HOST"), "{wide}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_formats_and_global_flags() {
    let b = TestBroker::start().await;
    b.ok(&["topics", "create", "logs", "--partitions", "2", "--config", "retention.ms=60000"], "");
    let list: Value = serde_json::from_str(&b.ok(&["-o", "json", "topics", "list"], "")).expect("JSON");
    assert_eq!(list[0]["name"], "logs");
    assert_eq!(list[0]["partitions"], 2);
    let wide = b.ok(&["topics", "list", "--output", "wide"], "");
    assert!(wide.contains("TOPIC-ID") && wide.lines().nth(1).is_some_and(|l| l.starts_with("logs")), "{wide}");
    assert!(b.ok(&["topics", "describe", "-o", "wide"], "").contains("LEADER-EPOCH"));
    let topic: Value = serde_json::from_str(&b.ok(&["topics", "describe", "logs", "-o", "json"], "")).expect("JSON");
    assert_eq!(topic[0]["configs"]["retention.ms"], "60000");

    let cluster: Value = serde_json::from_str(&b.ok(&["--output", "json", "cluster", "describe"], "")).expect("JSON");
    assert_eq!(cluster["controller"], 0);
    assert!(cluster["api_versions"]["apis"].as_array().is_some_and(|a| a.iter().any(|x| x["name"] == "Fetch")));
    assert!(b.ok(&["cluster", "describe", "-o", "wide"], "").contains("CONTROLLER"));

    let configs: Value =
        serde_json::from_str(&b.ok(&["configs", "describe", "--topic", "logs", "-o", "json"], "")).expect("JSON");
    let retention = configs.as_array().expect("array").iter().find(|c| c["name"] == "retention.ms").expect("listed");
    assert_eq!((&retention["value"], &retention["source"]), (&json!("60000"), &json!("DYNAMIC_TOPIC_CONFIG")));
    let wide = b.ok(&["configs", "describe", "--topic", "logs", "-o", "wide"], "");
    assert!(wide.contains("SYNONYMS") && wide.contains("SENSITIVE"), "{wide}");

    b.ok(&["consume", "logs", "--group", "g", "--timeout", "200"], "");
    let groups: Value = serde_json::from_str(&b.ok(&["groups", "list", "-o", "json"], "")).expect("JSON");
    assert!(groups.as_array().is_some_and(|g| g.iter().any(|x| x["group"] == "g")), "{groups}");
}

#[test]
fn completion_scripts_and_usage_errors() {
    let run = |args: &[&str]| run_gregor("127.0.0.1:1", args, "");
    for (shell, marker) in [("bash", "_gregor()"), ("zsh", "#compdef gregor"), ("fish", "complete -c gregor")] {
        let out = run(&["completion", shell]);
        assert!(out.status.success());
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker) && script.contains("reset-offsets"), "{shell}: {script}");
    }
    for bad in [
        &["topics", "list", "--no-such-flag"][..],
        &["--output", "xml", "topics", "list"],
        &["completion", "tcsh"],
        &["topics"],
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let down = run(&["--bootstrap-server", "127.0.0.1:1", "--request-timeout", "1000", "groups", "list"]);
    assert_eq!(down.status.code(), Some(1));
    assert_eq!(one_sentence_failure(&down), "gregor: cannot connect to 127.0.0.1:1: connection refused");
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    assert!(help.contains("localhost:9092") && help.contains("--output"), "{help}");
}
