//! Kafka's connection quotas. `max.connections` holds back accepting: new clients wait in
//! the kernel's backlog until a connection closes, as Kafka's acceptor does.
//! `max.connections.per.ip` closes a new connection from an address already at its
//! limit, so one host cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub(crate) struct ConnectionQuotas {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
}

/// One accepted connection's share of the quotas, given back when dropped.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    ip: Option<IpAddr>,
    _permit: OwnedSemaphorePermit,
}

impl ConnectionQuotas {
    pub(crate) fn new(max_connections: usize, max_per_ip: usize) -> Arc<Self> {
        let total = Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS)));
        Arc::new(Self { total, per_ip: Mutex::new(HashMap::new()), max_per_ip })
    }

    /// Waits until the broker-wide limit allows one more connection.
    pub(crate) async fn reserve(self: &Arc<Self>) -> ConnectionSlot {
        let permit = match self.total.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed; stay correct (no slot) if it were.
            Err(_) => std::future::pending().await,
        };
        ConnectionSlot { quotas: self.clone(), ip: None, _permit: permit }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ConnectionSlot {
    /// Binds the slot to the client's address; `false` when that address is at its limit.
    pub(crate) fn admit(&mut self, ip: IpAddr) -> bool {
        let mut counts = self.quotas.counts();
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.quotas.max_per_ip {
            if *count == 0 {
                counts.remove(&ip);
            }
            return false;
        }
        *count += 1;
        self.ip = Some(ip);
        true
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut counts = self.quotas.counts();
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_an_address_at_its_limit_when_admitted_should_refuse_until_a_slot_is_dropped() {
        let quotas = ConnectionQuotas::new(10, 2);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut a = quotas.reserve().await;
        let mut b = quotas.reserve().await;
        let mut c = quotas.reserve().await;
        assert!(a.admit(ip) && b.admit(ip));
        assert!(!c.admit(ip), "third connection from one address");
        assert!(c.admit([127, 0, 0, 2].into()), "another address has its own count");
        drop(a);
        let mut d = quotas.reserve().await;
        assert!(d.admit(ip), "a closed connection frees its slot");
    }

    #[tokio::test]
    async fn given_the_broker_limit_reached_when_reserving_should_wait_for_a_close() {
        let quotas = ConnectionQuotas::new(1, 10);
        let first = quotas.reserve().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), quotas.reserve()).await;
        assert!(waiting.is_err(), "the second reservation waits");
        drop(first);
        let _second = quotas.reserve().await;
    }
}
