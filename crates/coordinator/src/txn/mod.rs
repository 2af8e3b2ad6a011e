//! Kafka's transaction coordinator as a sans-IO state machine: one
//! [`TransactionCoordinatorShard`] per `__transaction_state` partition.
//!
//! ```text
//!  InitProducerId ─► Empty ──AddPartitions/AddOffsets──► Ongoing ──EndTxn──► PrepareCommit|PrepareAbort
//!        ▲                                                  │ timeout: epoch+1      │ markers written
//!        └───────────── CompleteCommit|CompleteAbort ◄──────┴───────────────────────┘
//! ```
//!
//! Every call returns a [`TxnStep`]: records to append to the shard's partition first,
//! then, for a Prepare state, the markers to write to every partition of the
//! transaction; once they are written the broker calls [`markers_written`], whose records
//! complete the transaction. A Prepare state found at load (a crash between the two)
//! asks for its markers again, so a decided transaction always completes.
//!
//! [`markers_written`]: TransactionCoordinatorShard::markers_written

mod records;

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::kafka_protocol::ResponseError;

use crate::{CoordinatorError, Record};

/// Kafka's `TransactionState`, with its ids in `__transaction_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    const ALL: [TxnState; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as i8
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    fn is_prepare(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort | Self::PrepareEpochFence)
    }

    fn is_complete(self) -> bool {
        matches!(self, Self::Empty | Self::CompleteCommit | Self::CompleteAbort)
    }
}

/// One transactional id's state (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, so a retried InitProducerId is recognised.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction began (-1 when none is open).
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// Settings, with Kafka's broker keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i64,
    /// The coordinator epoch written into markers (the partition's leader epoch).
    pub coordinator_epoch: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self { max_timeout_ms: 900_000, id_expiration_ms: 604_800_000, coordinator_epoch: 0 }
    }
}

/// Markers to write: one per partition of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerPlan {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
}

/// What the broker must do for one call: append `records`, then write `markers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxnStep {
    pub records: Vec<Record>,
    pub markers: Option<MarkerPlan>,
}

/// The producer id and epoch InitProducerId returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdAndEpoch {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

#[derive(Debug, Default)]
pub struct TransactionCoordinatorShard {
    config: TxnConfig,
    txns: BTreeMap<String, TxnMetadata>,
}

fn record(m: &TxnMetadata) -> Record {
    Record { key: records::key(&m.transactional_id), value: Some(records::value(m)) }
}

impl TransactionCoordinatorShard {
    pub fn new(config: TxnConfig) -> Self {
        Self { config, txns: BTreeMap::new() }
    }

    /// Applies one `__transaction_state` record while loading.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), CoordinatorError> {
        let id = records::decode_key(key)?;
        match value {
            Some(v) => {
                let m = records::decode_value(&id, v)?;
                let _ = self.txns.insert(id, m);
            }
            None => {
                let _ = self.txns.remove(&id);
            }
        }
        Ok(())
    }

    /// After loading: the markers of transactions decided before a crash.
    pub fn on_loaded(&self) -> Vec<MarkerPlan> {
        self.txns.values().filter(|m| m.state.is_prepare()).filter_map(|m| self.marker_plan(m)).collect()
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn transactions(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// Writes `m` and returns the step that persists it.
    fn put(&mut self, m: TxnMetadata, markers: Option<MarkerPlan>) -> TxnStep {
        let step = TxnStep { records: vec![record(&m)], markers };
        let _ = self.txns.insert(m.transactional_id.clone(), m);
        step
    }

    fn marker_plan(&self, m: &TxnMetadata) -> Option<MarkerPlan> {
        let commit = match m.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return None,
        };
        Some(MarkerPlan {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: self.config.coordinator_epoch,
            commit,
            partitions: m.partitions.iter().cloned().collect(),
        })
    }

    /// InitProducerId with a transactional id (Kafka's `handleInitProducerId`). An open
    /// transaction is aborted under a bumped epoch, fencing its producer, and the caller
    /// gets CONCURRENT_TRANSACTIONS until that completes, as in Kafka: the step is to be
    /// carried out whatever the outcome. `expected` is the producer id and epoch a KIP-360
    /// client asks to bump (-1 when none).
    pub fn init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: ProducerIdAndEpoch,
        allocate: &mut dyn FnMut() -> Result<i64, ResponseError>,
        now_ms: i64,
    ) -> (Result<ProducerIdAndEpoch, ResponseError>, TxnStep) {
        match self.try_init_producer_id(transactional_id, timeout_ms, expected, allocate, now_ms) {
            Ok((id, step)) => (Ok(id), step),
            Err(InitFailure::Fencing(step)) => (Err(ResponseError::ConcurrentTransactions), step),
            Err(InitFailure::Refused(e)) => (Err(e), TxnStep::default()),
        }
    }

    fn try_init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: ProducerIdAndEpoch,
        allocate: &mut dyn FnMut() -> Result<i64, ResponseError>,
        now_ms: i64,
    ) -> Result<(ProducerIdAndEpoch, TxnStep), InitFailure> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout.into());
        }
        let Some(current) = self.txns.get(transactional_id).cloned() else {
            let m = TxnMetadata {
                transactional_id: transactional_id.to_owned(),
                producer_id: allocate()?,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                start_ms: -1,
                last_update_ms: now_ms,
            };
            let id = ProducerIdAndEpoch { producer_id: m.producer_id, producer_epoch: 0 };
            return Ok((id, self.put(m, None)));
        };
        if expected.producer_id >= 0 {
            let retried = expected.producer_epoch == current.last_producer_epoch;
            if expected.producer_id != current.producer_id
                || (expected.producer_epoch != current.producer_epoch && !retried)
            {
                return Err(ResponseError::ProducerFenced.into());
            }
            if retried && current.state.is_complete() {
                let id =
                    ProducerIdAndEpoch { producer_id: current.producer_id, producer_epoch: current.producer_epoch };
                return Ok((id, TxnStep::default()));
            }
        }
        match current.state {
            TxnState::Ongoing => Err(InitFailure::Fencing(self.fence_and_abort(current, now_ms))),
            s if s.is_prepare() || s == TxnState::Dead => Err(ResponseError::ConcurrentTransactions.into()),
            _ => {
                let mut m = current;
                m.last_producer_epoch = m.producer_epoch;
                if m.producer_epoch >= i16::MAX - 1 {
                    // Epoch exhausted: a new producer id starts again at epoch 0.
                    m.producer_id = allocate()?;
                    m.producer_epoch = 0;
                    m.last_producer_epoch = -1;
                } else {
                    m.producer_epoch += 1;
                }
                m.timeout_ms = timeout_ms;
                m.state = TxnState::Empty;
                m.partitions.clear();
                m.start_ms = -1;
                m.last_update_ms = now_ms;
                let id = ProducerIdAndEpoch { producer_id: m.producer_id, producer_epoch: m.producer_epoch };
                Ok((id, self.put(m, None)))
            }
        }
    }

    /// Bumps the epoch (fencing the producer) and aborts the open transaction with it.
    fn fence_and_abort(&mut self, mut m: TxnMetadata, now_ms: i64) -> TxnStep {
        if m.producer_epoch < i16::MAX - 1 {
            m.last_producer_epoch = m.producer_epoch;
            m.producer_epoch += 1;
        }
        m.state = TxnState::PrepareAbort;
        m.last_update_ms = now_ms;
        let plan = self.marker_plan(&m);
        self.put(m, plan)
    }

    /// The transaction of `transactional_id`, checked against the caller's producer.
    fn checked(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&TxnMetadata, ResponseError> {
        let m = self.txns.get(transactional_id).ok_or(ResponseError::InvalidProducerIdMapping)?;
        if m.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if m.producer_epoch != producer_epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(m)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: the partitions join the transaction, which
    /// starts if none is open.
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<TxnStep, ResponseError> {
        let m = self.checked(transactional_id, producer_id, producer_epoch)?;
        if m.state.is_prepare() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        if m.state == TxnState::Dead {
            return Err(ResponseError::InvalidTxnState);
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return Ok(TxnStep::default());
        }
        let mut m = m.clone();
        if m.state != TxnState::Ongoing {
            m.partitions.clear();
            m.start_ms = now_ms;
            m.state = TxnState::Ongoing;
        }
        m.partitions.extend(partitions.iter().cloned());
        m.last_update_ms = now_ms;
        Ok(self.put(m, None))
    }

    /// Whether the producer may write to `partition` in its open transaction (KIP-890's
    /// verification, done before a transactional produce or offset commit).
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), ResponseError> {
        let m = self.checked(transactional_id, producer_id, producer_epoch)?;
        if m.state != TxnState::Ongoing || !m.partitions.contains(partition) {
            return Err(ResponseError::InvalidTxnState);
        }
        Ok(())
    }

    /// EndTxn: decides the transaction and asks for its markers. A retry of a decision
    /// already completed succeeds with nothing to do.
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<TxnStep, ResponseError> {
        let m = self.checked(transactional_id, producer_id, producer_epoch)?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut m = m.clone();
                m.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                m.last_update_ms = now_ms;
                let plan = self.marker_plan(&m);
                Ok(self.put(m, plan))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(TxnStep::default()),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ResponseError::ConcurrentTransactions)
            }
            (TxnState::PrepareEpochFence, _) => Err(ResponseError::ConcurrentTransactions),
            _ => Err(ResponseError::InvalidTxnState),
        }
    }

    /// Every marker of the transaction is written: it is complete.
    pub fn markers_written(&mut self, transactional_id: &str, producer_epoch: i16, now_ms: i64) -> TxnStep {
        let Some(m) = self.txns.get(transactional_id).filter(|m| m.producer_epoch == producer_epoch) else {
            return TxnStep::default();
        };
        let state = match m.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return TxnStep::default(),
        };
        let mut m = m.clone();
        m.state = state;
        m.partitions.clear();
        m.start_ms = -1;
        m.last_update_ms = now_ms;
        self.put(m, None)
    }

    /// Periodic work: aborts transactions open longer than their timeout (fencing their
    /// producer), asks again for markers that could not be written, and removes
    /// transactional ids idle past `transactional.id.expiration.ms`.
    pub fn on_tick(&mut self, now_ms: i64) -> Vec<TxnStep> {
        let mut steps = Vec::new();
        let ids: Vec<String> = self.txns.keys().cloned().collect();
        for id in ids {
            let Some(m) = self.txns.get(&id).cloned() else { continue };
            match m.state {
                TxnState::Ongoing if now_ms.saturating_sub(m.start_ms) > i64::from(m.timeout_ms) => {
                    tracing::info!(transactional_id = %id, producer_id = m.producer_id, "aborting a timed-out transaction");
                    steps.push(self.fence_and_abort(m, now_ms));
                }
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    steps.push(TxnStep { records: vec![], markers: self.marker_plan(&m) });
                }
                s if s.is_complete() && now_ms.saturating_sub(m.last_update_ms) > self.config.id_expiration_ms => {
                    let _ = self.txns.remove(&id);
                    steps
                        .push(TxnStep { records: vec![Record { key: records::key(&id), value: None }], markers: None });
                }
                _ => {}
            }
        }
        steps
    }
}

/// Why InitProducerId gives no id now.
enum InitFailure {
    /// An open transaction is being aborted: carry out the step, answer
    /// CONCURRENT_TRANSACTIONS so the client retries.
    Fencing(TxnStep),
    Refused(ResponseError),
}

impl From<ResponseError> for InitFailure {
    fn from(e: ResponseError) -> Self {
        Self::Refused(e)
    }
}

#[cfg(test)]
mod tests;
