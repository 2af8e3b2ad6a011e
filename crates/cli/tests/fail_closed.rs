//! Fail closed: `gregor serve` with a configuration written for a secured Kafka exits 1
//! with one sentence naming the key, before it creates the data dir or binds a port; the
//! same configuration without the security settings starts and answers over TCP.
#![allow(unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A port nothing listens on now (bound once by the OS, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn serve(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("gregor runs")
}

/// Asserts the refusal: exit code 1, one `gregor: refusing to start: ...` line naming
/// `needle`, no data dir created and nothing listening on `port`.
fn assert_refused(out: &Output, needle: &str, data_dir: &Path, port: u16) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "expected exit 1, stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one sentence expected: {stderr}");
    assert!(lines[0].starts_with("gregor: refusing to start: "), "{stderr}");
    assert!(lines[0].contains(needle), "'{needle}' not named: {stderr}");
    assert!(out.stdout.is_empty(), "no start line expected: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!data_dir.exists(), "the data dir was created before the refusal");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(), "something listens on {port}");
}

fn write_properties(dir: &Path, name: &str, lines: &[String]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write properties");
    path.display().to_string()
}

const STANDARD: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

#[test]
fn a_secured_server_properties_is_refused_and_the_plain_one_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let port = free_port();
    let plain = [format!("log.dirs={}", data.display()), format!("listeners=PLAINTEXT://127.0.0.1:{port}")];
    let secured_lines: Vec<String> = [
        format!("listeners=SASL_PLAINTEXT://127.0.0.1:{port}"),
        "sasl.enabled.mechanisms=PLAIN".to_owned(),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_owned(),
        "super.users=User:admin".to_owned(),
        format!("log.dirs={}", data.display()),
    ]
    .into();
    let secured = write_properties(tmp.path(), "secured.properties", &secured_lines);
    assert_refused(&serve(&["--config", &secured]), "PLAIN is enabled but no user is configured", &data, port);

    // Each setting Gregor cannot honour is enough to refuse the start.
    let ssl = format!("listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{}", port + 1);
    for (lines, needle) in [
        (vec![format!("listeners=SASL_PLAINTEXT://127.0.0.1:{port}")], "SASL mechanism GSSAPI"),
        (
            vec![format!("listeners=SASL_PLAINTEXT://127.0.0.1:{port}"), "sasl.enabled.mechanisms=PLAIN".into()],
            "PLAIN is enabled but no user is configured",
        ),
        (vec!["authorizer.class.name=com.example.MyAuthorizer".into()], "'authorizer.class.name'"),
        (vec![format!("authorizer.class.name={STANDARD}"), "super.users=admin".into()], "super.users"),
        (vec!["principal.builder.class=com.example.Builder".into()], "'principal.builder.class'"),
        (vec!["sasl.kerberos.service.name=kafka".into()], "'sasl.kerberos.service.name'"),
        (vec![ssl.clone()], "needs a certificate"),
        (
            vec![ssl.clone(), "ssl.keystore.type=JKS".into(), "ssl.keystore.location=/etc/kafka/broker.jks".into()],
            "ssl.keystore.type",
        ),
        (vec![ssl.clone(), "ssl.keystore.location=/nonexistent/broker.pem".into()], "/nonexistent/broker.pem"),
        (vec!["advertised.listeners=SSL://broker.example.com:9093".into()], "not one of 'listeners'"),
        (vec!["security.inter.broker.protocol=SASL_SSL".into()], "'security.inter.broker.protocol'"),
    ] {
        let mut all = plain.to_vec();
        if lines[0].starts_with("listeners=") {
            all.retain(|l| !l.starts_with("listeners="));
        }
        all.extend(lines);
        let file = write_properties(tmp.path(), "one.properties", &all);
        assert_refused(&serve(&["--config", &file]), needle, &data, port);
    }

    // A listener name mapped to a secured protocol needs what that protocol needs.
    let mapped = write_properties(
        tmp.path(),
        "mapped.properties",
        &[
            format!("log.dirs={}", data.display()),
            format!("listeners=EXTERNAL://127.0.0.1:{port}"),
            "listener.security.protocol.map=EXTERNAL:SASL_SSL".to_owned(),
        ],
    );
    assert_refused(&serve(&["--config", &mapped]), "listener EXTERNAL", &data, port);

    // The plain part of the same file starts and serves.
    let plain_file = write_properties(tmp.path(), "plain.properties", &plain);
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(["serve", "--config", &plain_file])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gregor runs");
    let mut banner = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut banner);
    let reached = TcpStream::connect(("127.0.0.1", port)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    assert!(banner.contains(&format!("127.0.0.1:{port}")), "start line: {banner}");
    assert!(reached, "the plain broker does not listen on {port}");
}

#[test]
fn security_flags_and_sets_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let port = free_port();
    let plain = format!("127.0.0.1:{port}");
    let secured = |protocol: &str| format!("{protocol}://{plain}");
    let set = |kv: &str| vec!["--listen".to_owned(), plain.clone(), "--set".to_owned(), kv.to_owned()];
    for (args, needle) in [
        (vec!["--listen".to_owned(), secured("SSL")], "needs a certificate"),
        (vec!["--listen".to_owned(), secured("SASL_SSL")], "needs a certificate"),
        (
            vec!["--listen".to_owned(), plain.clone(), "--advertised-listener".to_owned(), secured("SSL")],
            "not one of 'listeners'",
        ),
        (vec!["--set".to_owned(), format!("listeners={}", secured("SASL_PLAINTEXT"))], "SASL mechanism GSSAPI"),
        (set("sasl.server.callback.handler.class=com.example.Handler"), "'sasl.server.callback.handler.class'"),
        (set("ssl.engine.factory.class=com.example.Engine"), "'ssl.engine.factory.class'"),
    ] {
        let mut all = vec!["--data-dir".to_owned(), data.display().to_string()];
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        assert_refused(&serve(&refs), needle, &data, port);
    }
}

#[tokio::test]
async fn the_embedded_api_returns_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let dir = dir.to_str().expect("utf-8");
    let refused = gregor_broker::BrokerConfig::from_pairs([
        ("log.dirs", dir),
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("principal.builder.class", "com.example.Builder"),
    ]);
    let err = refused.expect_err("a principal builder is refused").to_string();
    assert!(err.contains("'principal.builder.class'"), "{err}");

    let mut config = gregor_broker::BrokerConfig::from_pairs([("log.dirs", dir)]).expect("plain config");
    assert!(config.set("ssl.engine.factory.class", "com.example.Engine").is_err());
    config.set("listeners", "SASL_SSL://127.0.0.1:0").expect("a listener value alone is checked at start");
    let err = gregor_broker::start(config).await.expect_err("a SASL_SSL listener without a keystore").to_string();
    assert!(err.contains("needs a certificate"), "{err}");
    assert!(!tmp.path().join("data").exists(), "the data dir was created before the refusal");
}

#[test]
fn a_broker_only_or_controller_only_node_without_controllers_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let port = free_port();
    for (roles, needle) in [
        ("broker", "'process.roles=broker' needs the quorum's controllers"),
        ("controller", "'process.roles=controller' needs the quorum's controllers"),
        ("broker,zookeeper", "invalid role 'zookeeper'"),
    ] {
        let out = serve(&[
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--set",
            &format!("process.roles={roles}"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!data.exists());
    }
}
