//! What every client subcommand shares: connection flags, the CLI's error type (one
//! sentence, exit 1 for a failed operation and 2 for a usage mistake), output that
//! survives a closed pipe, tables, and time and duration parsing.

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use clap::{Args, ValueEnum};
use gregor_client::{Client, ClientConfig, ClientError};

/// Where the cluster is.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// Broker(s) to bootstrap from, comma-separated HOST:PORT [default: localhost:9092,
    /// which reaches a broker listening on 127.0.0.1 or ::1].
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        env = "GREGOR_BOOTSTRAP",
        default_value = "localhost:9092",
        hide_default_value = true
    )]
    pub(crate) bootstrap_server: String,
    /// Connect and per-request timeout, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = 30_000)]
    pub(crate) request_timeout: u64,
    /// A Kafka client properties file for TLS and SASL (security.protocol, sasl.mechanism,
    /// sasl.jaas.config, ssl.truststore.location, ...), as Kafka's tools take it.
    #[arg(long, global = true, value_name = "FILE", env = "GREGOR_COMMAND_CONFIG")]
    pub(crate) command_config: Option<std::path::PathBuf>,
}

/// How listing and describing commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Output {
    /// Readable tables.
    #[default]
    Table,
    /// One JSON document with the same data (stable field names).
    Json,
    /// Tables with extra columns.
    Wide,
}

/// The flags every subcommand takes, before or after its name.
#[derive(Debug, Clone, Args)]
pub(crate) struct Global {
    #[command(flatten)]
    pub(crate) conn: ConnectArgs,
    /// Output of list and describe commands: table, json or wide.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line asks for something impossible (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// A broker call failed (exit code 1).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The operation failed for another reason (exit code 1).
    #[error("{0}")]
    Failed(String),
}

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

/// Shorthand for a usage error.
pub(crate) fn usage(message: impl Into<String>) -> CliError {
    CliError::Usage(message.into())
}

/// Shorthand for an operation failure.
pub(crate) fn failed(message: impl Into<String>) -> CliError {
    CliError::Failed(message.into())
}

/// Runs `future` on a single-threaded runtime and maps the outcome for `main`: usage
/// errors exit with 2 here, other errors return their sentence (exit 1).
pub(crate) fn run_async<F: Future<Output = CliResult>>(future: F) -> Result<(), String> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("cannot start: {e}"))?;
    finish(runtime.block_on(future))
}

/// Maps a subcommand's outcome for `main`.
pub(crate) fn finish(result: CliResult) -> Result<(), String> {
    match result {
        Ok(()) => Ok(()),
        Err(CliError::Usage(message)) => {
            eprintln!("gregor: {message}");
            std::process::exit(2);
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Connects to the cluster.
pub(crate) async fn connect(args: &ConnectArgs) -> CliResult<Client> {
    let mut config = ClientConfig::new(args.bootstrap_server.clone());
    config.timeout = Duration::from_millis(args.request_timeout.max(1));
    if let Some(path) = &args.command_config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read --command-config {}: {e}", path.display())))?;
        let props = gregor_broker::config::parse_properties(&text).into_iter().collect();
        config.security = gregor_client::ClientSecurity::from_properties(&props).map_err(|e| usage(e.to_string()))?;
    }
    Ok(Client::connect(config).await?)
}

/// Writes `text` to stdout. A closed pipe (`gregor consume ... | head`) ends the
/// process quietly with success, as Unix tools do.
pub(crate) fn emit(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(failed(format!("cannot write to stdout: {e}"))),
    }
}

/// Writes `value` as one pretty-printed JSON document.
pub(crate) fn emit_json(value: &serde_json::Value) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| failed(format!("cannot encode JSON: {e}")))?;
    emitln(&text)
}

/// Writes `line` and a newline to stdout.
pub(crate) fn emitln(line: &str) -> CliResult {
    emit(&format!("{line}\n"))
}

/// Renders rows under a header, columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            text.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Splits `K=V`.
pub(crate) fn key_value(text: &str, flag: &str) -> CliResult<(String, String)> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| usage(format!("{flag} expects KEY=VALUE, got '{text}'")))
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Formats epoch milliseconds as `2026-11-21T10:00:00.000Z`.
pub(crate) fn format_ms(ms: i64) -> String {
    gregor_broker::admin_api::time::format_ms(ms)
}

/// Parses ISO-8601 `2026-11-21T10:00:00[.sss][Z|+01:00]` (or a bare date, UTC) to epoch ms.
pub(crate) fn parse_datetime(text: &str) -> CliResult<i64> {
    gregor_broker::admin_api::time::parse_datetime(text).map_err(usage)
}

/// Parses a duration (`PT1H30M`, `1h30m`, `2d`, `500ms`) to milliseconds.
pub(crate) fn parse_duration(text: &str) -> CliResult<i64> {
    gregor_broker::admin_api::time::parse_duration(text).map_err(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_and_format() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_datetime("2026-11-21T10:00:00Z").unwrap(), 1_795_255_200_000);
        assert_eq!(parse_datetime("2026-11-21T11:00:00+01:00").unwrap(), 1_795_255_200_000);
        assert_eq!(parse_datetime("2026-11-21T10:00:00.5Z").unwrap(), 1_795_255_200_500);
        assert_eq!(parse_datetime("2026-11-21").unwrap(), 1_795_219_200_000);
        assert_eq!(format_ms(1_795_255_200_500), "2026-11-21T10:00:00.500Z");
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2026-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("PT1H30M").unwrap(), 5_400_000);
        assert_eq!(parse_duration("P1DT2H").unwrap(), 93_600_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("90s").unwrap(), 90_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500);
        assert_eq!(parse_duration("2d").unwrap(), 172_800_000);
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("12").is_err());
    }

    #[test]
    fn tables_pad_columns() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }
}
