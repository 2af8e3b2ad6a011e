//! `gregor serve`: runs a broker until SIGINT or SIGTERM, then shuts it down cleanly
//! (connections drained, logs flushed, checkpoints written).

use std::path::PathBuf;

use clap::Args;
use gregor_broker::BrokerConfig;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; a host name binds every address it resolves to
    /// (localhost: 127.0.0.1 and ::1). Overrides `listeners`. `PLAINTEXT://HOST:PORT`
    /// also works; other security protocols are refused until Gregor supports them.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address given to clients in metadata. Overrides `advertised.listeners`.
    #[arg(long, value_name = "HOST:PORT")]
    advertised_listener: Option<String>,
    /// Data directory (Kafka's `log.dirs`). Default: ./gregor-data
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Broker id (Kafka's `node.id`). Default: 0
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
    /// The controller listener (Kafka's `CONTROLLER://HOST:PORT` in `listeners`, with
    /// `controller.listener.names=CONTROLLER`): where the metadata quorum's voters talk.
    #[arg(long, value_name = "HOST:PORT")]
    controller_listen: Option<String>,
    /// The metadata quorum's voters, Kafka's `controller.quorum.voters`:
    /// `1@host1:9093,2@host2:9093,3@host3:9093`. Fresh nodes started with the same voters
    /// form one cluster, no format step needed.
    #[arg(long, value_name = "ID@HOST:PORT,...")]
    controller_quorum: Option<String>,
    /// The HTTP listener (Prometheus `/metrics`, `/api/v1/health`, later the console and
    /// admin API), Gregor's `http.listeners`: HOST:PORT, or `none`. Default
    /// localhost:8089; when the default port is taken the broker starts without it.
    #[arg(long, value_name = "HOST:PORT|none")]
    http_listen: Option<String>,
    /// A Kafka `server.properties` style file of `key=value` lines.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Any config key, with Kafka's names (repeatable): --set num.partitions=3
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl ServeArgs {
    /// Config file first, then `--set`, then the dedicated flags: the most specific wins.
    fn config(&self) -> Result<BrokerConfig, String> {
        let default = [("listeners".to_owned(), "PLAINTEXT://localhost:9092".to_owned())];
        let mut pairs = file_then_sets(self.config.as_deref(), &default, &self.set)?;
        if let Some(listen) = &self.listen {
            pairs.push(("listeners".into(), with_protocol(listen)));
        }
        if let Some(adv) = &self.advertised_listener {
            pairs.push(("advertised.listeners".into(), with_protocol(adv)));
        }
        if let Some(dir) = &self.data_dir {
            pairs.push(("log.dirs".into(), dir.display().to_string()));
        }
        if let Some(id) = self.node_id {
            pairs.push(("node.id".into(), id.to_string()));
        }
        if !pairs.iter().any(|(k, _)| k == "listeners") {
            pairs.push(("listeners".into(), "PLAINTEXT://localhost:9092".into()));
        }
        if let Some(controller) = &self.controller_listen {
            let listeners =
                pairs.iter().rev().find(|(k, _)| k == "listeners").map(|(_, v)| v.clone()).unwrap_or_default();
            pairs.push(("listeners".into(), format!("{listeners},CONTROLLER://{controller}")));
            if !pairs.iter().any(|(k, _)| k == "controller.listener.names") {
                pairs.push(("controller.listener.names".into(), "CONTROLLER".into()));
            }
        }
        if let Some(voters) = &self.controller_quorum {
            pairs.push(("controller.quorum.voters".into(), voters.clone()));
        }
        if let Some(http) = &self.http_listen {
            pairs.push(("http.listeners".into(), http.clone()));
        }
        BrokerConfig::from_pairs(pairs).map_err(|e| e.to_string())
    }
}

/// The `key=value` pairs of a `server.properties` file (or `default` without one), then
/// the `--set KEY=VALUE` ones after them, so that later ones win.
pub(crate) fn file_then_sets(
    file: Option<&std::path::Path>,
    default: &[(String, String)],
    sets: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut pairs = match file {
        Some(path) => BrokerConfig::parse_properties_file(path).map_err(|e| e.to_string())?,
        None => default.to_vec(),
    };
    for kv in sets {
        let (k, v) = kv.split_once('=').ok_or_else(|| format!("--set expects KEY=VALUE, got '{kv}'"))?;
        pairs.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(pairs)
}

/// `HOST:PORT` is a PLAINTEXT listener; `NAME://HOST:PORT` is taken as Kafka's listener
/// form, so that `--listen SSL://...` is checked (and refused) like `listeners=SSL://...`.
fn with_protocol(listener: &str) -> String {
    if listener.contains("://") {
        listener.to_owned()
    } else {
        format!("PLAINTEXT://{listener}")
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<(), String> {
    init_logging();
    let config = args.config()?;
    // Listeners, certificates and SASL users first: a refusal comes before anything binds.
    gregor_broker::check_listeners(&config).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let data_dir = config.data_dir();
        // Bound before the broker starts, so a port conflict refuses the start early.
        let http = bind_http(&config).await?;
        let console_users = config.broker_str("console.users");
        // Checked before the broker starts: a bad console.users refuses the start.
        gregor_http::auth::Users::parse(&console_users).map_err(|e| format!("console.users: {e}"))?;
        let session_timeout =
            std::time::Duration::from_millis(config.broker_i64("console.session.timeout.ms").max(1) as u64);
        let metrics_login_required = config.broker_bool("http.metrics.login.required");
        let broker = gregor_broker::start(config).await.map_err(|e| e.to_string())?;
        let console = match http {
            Some(listener) if broker.is_broker() => {
                let (users, new_password) = gregor_http::auth::Users::load_or_generate(&console_users, &data_dir)?;
                if let Some(password) = new_password {
                    // Once: only its hash is kept (data dir, console-admin.sha256).
                    eprintln!("gregor: admin API and console user 'admin', password {password} (shown once)");
                }
                let settings = gregor_http::HttpSettings { users, session_timeout, metrics_login_required };
                start_http(listener, settings, &broker)
            }
            _ => None,
        };
        let addrs: Vec<String> = broker.local_addrs().iter().map(ToString::to_string).collect();
        // A controller-only node (process.roles=controller) serves no clients.
        let role = if broker.is_broker() { "" } else { "controller " };
        println!(
            "Gregor {} {role}listening on {} (advertised {}), node {}, cluster {}, data in {}{}",
            env!("CARGO_PKG_VERSION"),
            addrs.join(", "),
            broker.bootstrap_servers(),
            broker.node_id(),
            broker.cluster_id(),
            data_dir.display(),
            console.as_ref().map(|(url, _)| format!(", console {url}")).unwrap_or_default()
        );
        wait_for_signal().await;
        tracing::info!("shutting down");
        if let Some((_, stop)) = console {
            let _ = stop.send(true);
        }
        broker.shutdown().await.map_err(|e| e.to_string())
    })
}

/// The HTTP listener of `http.listeners`: `None` when it is `none`, or when the default
/// port is taken (a warning: a second broker on one machine still starts); a port given
/// explicitly that cannot be bound refuses the start.
async fn bind_http(config: &BrokerConfig) -> Result<Option<tokio::net::TcpListener>, String> {
    let value = config.broker_str("http.listeners");
    let address = value.trim();
    if address.is_empty() || address.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match gregor_http::bind(address).await {
        Ok(listener) => Ok(Some(listener)),
        Err(e) if config.broker_value("http.listeners").source == gregor_broker::config::ConfigSource::Default => {
            tracing::warn!(%address, error = %e, "HTTP listener not started: the default address is taken (set http.listeners or --http-listen)");
            Ok(None)
        }
        Err(e) => Err(format!("cannot listen for HTTP on {address}: {e}")),
    }
}

/// Serves `/metrics` and the API on `listener`; returns the URL and the stop switch.
fn start_http(
    listener: tokio::net::TcpListener,
    settings: gregor_http::HttpSettings,
    broker: &gregor_broker::RunningBroker,
) -> Option<(String, tokio::sync::watch::Sender<bool>)> {
    let handle = broker.handle()?;
    let url = format!("http://{}/", listener.local_addr().ok()?);
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let _ = stopped.changed().await;
    };
    let _task = tokio::spawn(async move {
        if let Err(e) = gregor_http::serve(listener, handle, settings, shutdown).await {
            tracing::error!(error = %e, "HTTP listener failed");
        }
    });
    Some((url, stop))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
