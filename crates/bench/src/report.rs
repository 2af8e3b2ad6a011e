//! A run's result (one human line or one JSON object) and the broker's CPU and memory
//! read from `/proc`.

use std::fs;
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::{Map, Value};

/// The result of one workload.
#[derive(Debug)]
pub(crate) struct Report {
    human: String,
    fields: Map<String, Value>,
    /// Payload bytes moved, for CPU seconds per GB.
    bytes: Option<u64>,
}

impl Report {
    pub(crate) fn new(workload: &str, human: String) -> Self {
        let mut fields = Map::new();
        fields.insert("workload".into(), workload.into());
        Self { human: format!("{workload}: {human}"), fields, bytes: None }
    }

    /// Adds a JSON field.
    pub(crate) fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Appends text to the human line.
    pub(crate) fn note(mut self, text: &str) -> Self {
        self.human.push_str(text);
        self
    }

    /// Records the payload bytes moved, for `broker_cpu_seconds_per_gb`.
    pub(crate) fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self.field("bytes", bytes)
    }

    /// Adds the broker's CPU seconds between two samples and its memory at the end.
    pub(crate) fn add_broker(&mut self, before: &ProcSample, after: &ProcSample) {
        let cpu = after.cpu_seconds - before.cpu_seconds;
        self.fields.insert("broker_cpu_seconds".into(), round3(cpu).into());
        self.fields.insert("broker_rss_kb".into(), after.rss_kb.into());
        self.fields.insert("broker_hwm_kb".into(), after.hwm_kb.into());
        self.human.push_str(&format!(
            " (broker: {cpu:.2} CPU s, RSS {:.1} MB, peak {:.1} MB",
            after.rss_kb as f64 / 1024.0,
            after.hwm_kb as f64 / 1024.0
        ));
        if let Some(bytes) = self.bytes.filter(|b| *b > 0) {
            let per_gb = cpu / (bytes as f64 / 1e9);
            self.fields.insert("broker_cpu_seconds_per_gb".into(), round3(per_gb).into());
            self.human.push_str(&format!(", {per_gb:.2} CPU s/GB"));
        }
        self.human.push(')');
    }

    pub(crate) fn human_line(&self) -> String {
        self.human.clone()
    }

    pub(crate) fn json_line(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }
}

/// Rounds to three decimals for JSON output.
pub(crate) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// One reading of a process's CPU time and memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcSample {
    pub(crate) cpu_seconds: f64,
    pub(crate) rss_kb: u64,
    pub(crate) hwm_kb: u64,
}

/// Reads a broker process's `/proc/PID/stat` and `/proc/PID/status`.
#[derive(Debug)]
pub(crate) struct BrokerProbe {
    pid: u32,
    ticks_per_second: f64,
}

impl BrokerProbe {
    pub(crate) fn new(pid: u32) -> anyhow::Result<Self> {
        let probe = Self { pid, ticks_per_second: clock_ticks() };
        probe.sample().with_context(|| format!("cannot read /proc for --pid {pid}"))?;
        Ok(probe)
    }

    pub(crate) fn sample(&self) -> anyhow::Result<ProcSample> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .with_context(|| format!("process {} is not running", self.pid))?;
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))
            .with_context(|| format!("process {} is not running", self.pid))?;
        let ticks = cpu_ticks(&stat)?;
        Ok(ProcSample {
            cpu_seconds: ticks as f64 / self.ticks_per_second,
            rss_kb: status_kb(&status, "VmRSS:")?,
            hwm_kb: status_kb(&status, "VmHWM:")?,
        })
    }
}

/// utime + stime from `/proc/PID/stat` (fields 14 and 15; the command name in field 2
/// may hold spaces, so count from its closing parenthesis).
fn cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("/proc stat has no command field");
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (field(11), field(12)) {
        (Some(utime), Some(stime)) => Ok(utime + stime),
        _ => bail!("/proc stat has no utime and stime fields"),
    }
}

/// A `kB` value such as `VmRSS:` from `/proc/PID/status`.
fn status_kb(status: &str, key: &str) -> anyhow::Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("/proc status has no {key} line"))
}

/// The kernel's clock ticks per second for `/proc` CPU times (`getconf CLK_TCK`, 100 on
/// every common Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 10);
    }

    #[test]
    fn parses_status_kb() {
        let status = "Name:\tgregor\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(status_kb(status, "VmRSS:").unwrap(), 1024);
        assert_eq!(status_kb(status, "VmHWM:").unwrap(), 2048);
        assert!(status_kb(status, "VmSwap:").is_err());
    }
}
