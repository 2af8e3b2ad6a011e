//! A producer client with `acks=all`: sends each new value to the leader its metadata
//! names (refreshed from the controller after an error or a timeout, so it may be stale
//! meanwhile), with a few requests in flight. Retries are new values: duplicates do not
//! matter here, every acknowledged record is checked by its (offset, epoch, value).

use std::collections::BTreeMap;

use crate::controller::Controller;
use crate::ctx::Ctx;
use crate::net::{Code, Msg, Node};
use crate::rng::Rng;

#[derive(Debug)]
pub(crate) struct Producer {
    id: u32,
    /// The leader per partition as last learned.
    leaders: BTreeMap<i32, i32>,
    /// Request id -> (partition, deadline).
    in_flight: BTreeMap<u64, (i32, u64)>,
    next_req: u64,
    pub(crate) active: bool,
}

impl Producer {
    pub(crate) fn new(id: u32) -> Self {
        Self { id, leaders: BTreeMap::new(), in_flight: BTreeMap::new(), next_req: 0, active: true }
    }

    fn me(&self) -> (Node, u32) {
        (Node::Producer(self.id), 0)
    }

    /// Times out lost requests, then sends one more if there is room.
    pub(crate) fn tick(&mut self, controller: &Controller, rng: &mut Rng, next_value: &mut u64, ctx: &mut Ctx) {
        let now = ctx.now;
        let expired: Vec<(u64, i32)> =
            self.in_flight.iter().filter(|(_, (_, d))| *d <= now).map(|(r, (p, _))| (*r, *p)).collect();
        for (req, partition) in expired {
            let _ = self.in_flight.remove(&req);
            let _ = self.leaders.remove(&partition);
        }
        if !self.active || self.in_flight.len() >= ctx.cfg.max_in_flight {
            return;
        }
        let partition = rng.range((0, ctx.cfg.partitions as u64 - 1)) as i32;
        let leader = match self.leaders.get(&partition) {
            Some(&leader) => leader,
            None => {
                // A metadata request to an up-to-date broker.
                let leader = controller.partition(partition).map_or(-1, |p| p.leader);
                let _ = self.leaders.insert(partition, leader);
                leader
            }
        };
        if leader < 0 {
            let _ = self.leaders.remove(&partition);
            return;
        }
        self.next_req += 1;
        *next_value += 1;
        let req = self.next_req;
        let _ = self.in_flight.insert(req, (partition, now + ctx.cfg.timing.request_timeout_ms));
        ctx.send(self.me(), Node::Broker(leader), Msg::Produce { partition, req, value: *next_value });
    }

    pub(crate) fn handle(&mut self, msg: Msg, ctx: &mut Ctx) {
        let Msg::ProduceAnswer { partition, req, result } = msg else { return };
        if self.in_flight.remove(&req).is_none() {
            return;
        }
        match result {
            Ok(_) => ctx.stats.acks_received += 1,
            Err(Code::NotEnoughReplicas | Code::NotEnoughReplicasAfterAppend | Code::RequestTimedOut) => {}
            Err(_) => {
                let _ = self.leaders.remove(&partition);
            }
        }
    }

    pub(crate) fn idle(&self) -> bool {
        self.in_flight.is_empty()
    }
}
