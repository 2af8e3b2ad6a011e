//! Batch headers as the log layer sees them: read from a file with `pread`, never mapped.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use gregor_protocol::record_batch::{batch_size, RecordBatchHeader, BATCH_HEADER_LEN, LOG_OVERHEAD};

/// Bytes covered by the CRC start here (`attributes`).
const CRC_START: usize = 21;
/// Chunk size for streaming a batch through the CRC without holding it whole in memory.
const CRC_CHUNK: usize = 64 * 1024;

/// The header fields of one stored batch, copied out of its 61 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) size: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) last_sequence: i32,
    pub(crate) records_count: i32,
    pub(crate) is_log_append_time: bool,
    pub(crate) is_transactional: bool,
    /// A control batch: a transaction marker written by the transaction coordinator.
    pub(crate) is_control: bool,
    pub(crate) crc: u32,
}

impl BatchMeta {
    pub(crate) fn from_view(h: &RecordBatchHeader<'_>, size: usize) -> Self {
        Self {
            base_offset: h.base_offset(),
            last_offset: h.last_offset(),
            size: size as u64,
            max_timestamp: h.max_timestamp(),
            leader_epoch: h.partition_leader_epoch(),
            producer_id: h.producer_id(),
            producer_epoch: h.producer_epoch(),
            base_sequence: h.base_sequence(),
            last_sequence: h.last_sequence(),
            records_count: h.records_count(),
            is_log_append_time: h.is_log_append_time(),
            is_transactional: h.is_transactional(),
            is_control: h.is_control(),
            crc: h.crc(),
        }
    }

    /// Parses just the 61 header bytes of a batch whose records are not in memory. The
    /// protocol view wants the whole batch, so the header is shown to it as a batch with
    /// no records; the real size is kept aside. `None` for sizes or magic that cannot be a
    /// stored batch.
    pub(crate) fn from_header(header: &[u8; BATCH_HEADER_LEN]) -> Option<Self> {
        let size = batch_size(header)?;
        if size < BATCH_HEADER_LEN {
            return None;
        }
        let mut copy = *header;
        let header_only = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;
        copy[8..12].copy_from_slice(&header_only.to_be_bytes());
        let view = RecordBatchHeader::parse(&copy).ok()?;
        let meta = Self::from_view(&view, size);
        (meta.last_offset >= meta.base_offset).then_some(meta)
    }

    pub(crate) fn next_offset(&self) -> i64 {
        self.last_offset + 1
    }

    pub(crate) fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Reads the header of the batch at `position`. `Ok(None)` when what is there is not the
/// start of a whole batch inside `file_size` bytes: the end of the log or a torn tail.
pub(crate) fn read_header(file: &File, position: u64, file_size: u64) -> io::Result<Option<BatchMeta>> {
    if position + BATCH_HEADER_LEN as u64 > file_size {
        return Ok(None);
    }
    let mut header = [0u8; BATCH_HEADER_LEN];
    match file.read_exact_at(&mut header, position) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok(BatchMeta::from_header(&header).filter(|m| position + m.size <= file_size))
}

/// Reads only the base offset and size of the batch at `position` (12 bytes): enough to
/// walk batch boundaries when building a read.
pub(crate) fn read_offset_and_size(file: &File, position: u64) -> io::Result<Option<(i64, u64)>> {
    let mut head = [0u8; LOG_OVERHEAD];
    match file.read_exact_at(&mut head, position) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&head[..8]);
    Ok(batch_size(&head).map(|size| (i64::from_be_bytes(base), size as u64)))
}

/// Checks the stored CRC-32C of the batch at `position`, streaming it in chunks so a
/// corrupt length cannot make recovery allocate the whole segment.
pub(crate) fn is_crc_valid_at(file: &File, position: u64, meta: &BatchMeta) -> io::Result<bool> {
    let mut crc = 0u32;
    let mut buf = vec![0u8; CRC_CHUNK.min(meta.size as usize)];
    let mut at = position + CRC_START as u64;
    let end = position + meta.size;
    while at < end {
        let len = (end - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..len], at)?;
        crc = crc32c::crc32c_append(crc, &buf[..len]);
        at += len as u64;
    }
    Ok(crc == meta.crc)
}

/// Reads the whole batch at `position` into memory.
pub(crate) fn read_batch(file: &File, position: u64, meta: &BatchMeta) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; meta.size as usize];
    file.read_exact_at(&mut buf, position)?;
    Ok(buf)
}
