//! What every workload shares: argument parsing, librdkafka client configuration, topic
//! creation, the payload pool and the run's deadline.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// How long to wait for the broker to answer the first metadata request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Producer `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acks {
    Zero,
    One,
    All,
}

impl FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "0" => Ok(Self::Zero),
            "1" => Ok(Self::One),
            "all" | "-1" => Ok(Self::All),
            other => Err(format!("acks must be 0, 1 or all, not {other:?}")),
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Zero => "0",
            Self::One => "1",
            Self::All => "all",
        })
    }
}

/// Producer `compression.codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Lz4,
    Zstd,
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            "lz4" => Ok(Self::Lz4),
            "zstd" => Ok(Self::Zstd),
            other => Err(format!("compression must be none, gzip, lz4 or zstd, not {other:?}")),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        })
    }
}

/// Parses `KEY=VALUE` for `--set`.
pub(crate) fn parse_config_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Parses a positive number of seconds, at most one day.
pub(crate) fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a number of seconds between 0 and 86400, got {s:?}")),
    }
}

/// Connection settings and the run's hard deadline.
#[derive(Debug)]
pub(crate) struct Common {
    pub(crate) bootstrap: String,
    settings: Vec<(String, String)>,
    deadline: Instant,
}

impl Common {
    pub(crate) fn new(bootstrap: String, settings: Vec<(String, String)>, timeout_secs: f64) -> Self {
        Self { bootstrap, settings, deadline: Instant::now() + Duration::from_secs_f64(timeout_secs) }
    }

    /// A client configuration: the bootstrap address, `defaults`, then the user's `--set`.
    pub(crate) fn config(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in defaults {
            config.set(*k, v);
        }
        for (k, v) in &self.settings {
            config.set(k, v);
        }
        config
    }

    /// Fails once the run has used up its `--timeout`.
    pub(crate) fn check_deadline(&self, what: &str) -> anyhow::Result<()> {
        if Instant::now() >= self.deadline {
            bail!("the run hit its --timeout while {what}");
        }
        Ok(())
    }

    /// Time left before the deadline.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// A consumer used only for metadata and watermarks; it never creates topics.
    pub(crate) fn metadata_client(&self) -> anyhow::Result<BaseConsumer> {
        let defaults = [("allow.auto.create.topics", "false".to_string()), ("group.id", "gregor-bench-meta".into())];
        self.config(&defaults).create().context("cannot create the librdkafka metadata client")
    }

    /// Partition count of `topic` once every partition has a leader, or `None` if the
    /// topic does not exist.
    pub(crate) fn topic_partitions(&self, client: &BaseConsumer, topic: &str) -> anyhow::Result<Option<i32>> {
        let timeout = CONNECT_TIMEOUT.min(self.remaining());
        let metadata = client
            .fetch_metadata(Some(topic), timeout)
            .with_context(|| format!("cannot read metadata from {}", self.bootstrap))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Ok(None);
        };
        if t.error().is_some() || t.partitions().is_empty() {
            return Ok(None);
        }
        let ready = t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0);
        Ok(ready.then_some(t.partitions().len() as i32))
    }

    /// Creates `topic` with `partitions` partitions unless it exists, then waits until its
    /// metadata shows every partition with a leader. Returns its actual partition count.
    pub(crate) fn ensure_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<i32> {
        let meta = self.metadata_client()?;
        if let Some(n) = self.topic_partitions(&meta, topic)? {
            return Ok(n);
        }
        self.create_topic(topic, partitions)?;
        self.wait_for_topic(&meta, topic)
    }

    /// Waits until `topic` is in the metadata with a leader for each partition.
    pub(crate) fn wait_for_topic(&self, meta: &BaseConsumer, topic: &str) -> anyhow::Result<i32> {
        loop {
            if let Some(n) = self.topic_partitions(meta, topic)? {
                return Ok(n);
            }
            self.check_deadline(&format!("waiting for topic {topic} to appear in the metadata"))?;
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends CreateTopics; an existing topic is not an error.
    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            self.config(&[]).create().context("cannot create the librdkafka admin client")?;
        let timeout = self.remaining().min(Duration::from_secs(300));
        let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
        let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime for admin requests")?;
        let results = runtime
            .block_on(admin.create_topics([&new_topic], &options))
            .with_context(|| format!("cannot create topic {topic} on {}", self.bootstrap))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(anyhow!("the broker refused to create topic {name}: {code}")),
            }
        }
        Ok(())
    }
}

/// A pool of pseudo-random letters from a 16-symbol alphabet (moderately compressible,
/// like text); each message takes its value from a different place in it, so a batch is
/// not one value repeated.
#[derive(Debug)]
pub(crate) struct PayloadPool {
    bytes: Vec<u8>,
    state: u64,
}

impl PayloadPool {
    const LEN: usize = 4 << 20;

    pub(crate) fn new(max_size: usize) -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let len = Self::LEN.max(max_size * 4);
        let bytes = (0..len)
            .map(|_| {
                state = xorshift(state);
                b"abcdefghijklmnop"[(state >> 60) as usize]
            })
            .collect();
        Self { bytes, state }
    }

    /// The next value of `size` bytes.
    pub(crate) fn next(&mut self, size: usize) -> &[u8] {
        self.state = xorshift(self.state);
        let start = (self.state as usize) % (self.bytes.len() - size);
        &self.bytes[start..start + size]
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Bytes as decimal megabytes (10^6), as throughput is reported.
pub(crate) fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
