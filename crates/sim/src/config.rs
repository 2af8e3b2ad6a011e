//! The knobs of a run. Times are simulated milliseconds, scaled down from Kafka's defaults
//! (heartbeat 2 s, session 9 s, lag 30 s) with their ratios kept, so a few thousand steps
//! see several fencings, ISR shrinks and elections.

/// What is simulated and how hostile the world is.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Number of brokers (3 or 5 in the soaks), ids 1..=brokers.
    pub brokers: i32,
    pub replication_factor: i32,
    /// Partitions of the one simulated topic.
    pub partitions: i32,
    pub min_insync_replicas: usize,
    /// Events processed before the healing phase.
    pub steps: u64,
    /// Producer clients, each with at most `max_in_flight` `acks=all` requests.
    pub producers: u32,
    pub max_in_flight: usize,
    /// `unclean.leader.election.enable`: off in Kafka and here; on, the checks must fire.
    pub unclean_leader_election: bool,
    /// Records a leader returns per Fetch at most (replica.fetch.max.bytes, in records).
    pub fetch_max_records: usize,
    /// Whose epoch-cache rules the log model follows.
    pub epoch_cache: EpochCache,
    pub faults: Faults,
    pub timing: Timing,
}

/// Which rules the log model's leader-epoch cache follows. `Kafka` copies
/// `LeaderEpochFileCache` and `UnifiedLog.truncateTo`, which `gregor_log` follows since
/// 2026-12-07 (the default); `Legacy` is `gregor_log` before that, kept to replay the
/// findings it lost records with (README.md, "Findings"):
/// - an epoch older than every known one: `Legacy` answered `None` (as for an empty
///   cache), Kafka `(epoch, start of the first known epoch)`;
/// - a truncation at or past the log end: `Legacy` changed nothing, Kafka still drops the
///   cache's entries from the log end on (a leader's epoch start with no records yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochCache {
    Legacy,
    Kafka,
}

/// Fault probabilities. The nemesis wakes every `nemesis_every_ms` and picks one fault by
/// the weights below; each lasts `fault_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Probability that a message is lost (a reset connection).
    pub drop: f64,
    /// One-way delay of a message; each link stays FIFO, as a TCP connection is.
    pub delay_ms: (u64, u64),
    pub nemesis_every_ms: (u64, u64),
    /// kill -9 then restart after `fault_ms`: the log survives (page cache), memory not.
    pub crash: f64,
    /// One broker cut from everyone, the controller included.
    pub isolate: f64,
    /// The link between two brokers, or between a broker and the controller, cut.
    pub cut_link: f64,
    /// SIGSTOP for `fault_ms`: the process (and its clock) stops, then resumes as a zombie.
    pub pause: f64,
    pub fault_ms: (u64, u64),
}

/// Timeouts and intervals (Kafka's names in the comments).
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// broker.heartbeat.interval.ms
    pub heartbeat_ms: u64,
    /// broker.session.timeout.ms
    pub session_timeout_ms: u64,
    /// replica.lag.time.max.ms
    pub lag_max_ms: i64,
    /// replica.fetch.wait.max.ms
    pub fetch_wait_ms: u64,
    /// replica.fetch.backoff.ms
    pub fetch_backoff_ms: u64,
    /// Every request to another node: replica.socket.timeout.ms, the controller calls, and
    /// the producer's request.timeout.ms (also the leader's `acks=all` wait).
    pub request_timeout_ms: u64,
    /// replica.high.watermark.checkpoint.interval.ms
    pub hw_checkpoint_ms: u64,
    /// How often a broker asks the controller for newer metadata (it also gets pushes).
    pub metadata_poll_ms: u64,
    /// leader.imbalance.check.interval.seconds
    pub rebalance_ms: u64,
    /// How often a producer may send.
    pub produce_every_ms: (u64, u64),
    /// Granularity of each node's timers.
    pub tick_ms: u64,
    /// The healing phase gives up (a liveness failure) after this long.
    pub heal_budget_ms: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            brokers: 3,
            replication_factor: 3,
            partitions: 2,
            min_insync_replicas: 2,
            steps: 4_000,
            producers: 2,
            max_in_flight: 2,
            unclean_leader_election: false,
            fetch_max_records: 20,
            epoch_cache: EpochCache::Kafka,
            faults: Faults::default(),
            timing: Timing::default(),
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            drop: 0.05,
            delay_ms: (1, 15),
            nemesis_every_ms: (300, 1_500),
            crash: 0.3,
            isolate: 0.2,
            cut_link: 0.8,
            pause: 0.3,
            fault_ms: (100, 2_500),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat_ms: 300,
            session_timeout_ms: 1_500,
            lag_max_ms: 3_000,
            fetch_wait_ms: 200,
            fetch_backoff_ms: 100,
            request_timeout_ms: 1_500,
            hw_checkpoint_ms: 1_000,
            metadata_poll_ms: 250,
            rebalance_ms: 5_000,
            produce_every_ms: (10, 40),
            tick_ms: 50,
            heal_budget_ms: 120_000,
        }
    }
}

impl Faults {
    /// No faults at all: a baseline for throughput and liveness.
    pub fn none() -> Self {
        Self { drop: 0.0, crash: 0.0, isolate: 0.0, cut_link: 0.0, pause: 0.0, ..Self::default() }
    }
}

impl SimConfig {
    /// The default config with `brokers` brokers.
    pub fn with_brokers(brokers: i32) -> Self {
        Self { brokers, ..Self::default() }
    }

    /// The command-line flags that rebuild this config, for the replay command; `None`
    /// when a knob differs from what the flags can express.
    pub fn flags(&self) -> Option<String> {
        let base = Self {
            brokers: self.brokers,
            replication_factor: self.replication_factor,
            partitions: self.partitions,
            min_insync_replicas: self.min_insync_replicas,
            steps: self.steps,
            unclean_leader_election: self.unclean_leader_election,
            epoch_cache: self.epoch_cache,
            faults: if self.faults == Faults::none() { Faults::none() } else { Faults::default() },
            ..Self::default()
        };
        if base != *self {
            return None;
        }
        let mut flags = format!(
            "--brokers {} --rf {} --partitions {} --min-isr {} --steps {}",
            self.brokers, self.replication_factor, self.partitions, self.min_insync_replicas, self.steps
        );
        if self.unclean_leader_election {
            flags.push_str(" --unclean");
        }
        if self.epoch_cache == EpochCache::Legacy {
            flags.push_str(" --legacy-epoch-cache");
        }
        if self.faults == Faults::none() {
            flags.push_str(" --no-faults");
        }
        Some(flags)
    }

    /// Refuses configs the simulation cannot run.
    pub fn validate(&self) -> Result<(), String> {
        if self.brokers < 1 || self.replication_factor < 1 || self.replication_factor > self.brokers {
            return Err(format!("replication factor {} over {} brokers", self.replication_factor, self.brokers));
        }
        if self.partitions < 1 || self.min_insync_replicas < 1 {
            return Err("partitions and min.insync.replicas must be at least 1".into());
        }
        Ok(())
    }
}
