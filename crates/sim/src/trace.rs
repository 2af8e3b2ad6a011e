//! The last events of a run, printed with a violation.

use std::collections::VecDeque;

/// How many events a violation shows.
pub(crate) const SHOWN: usize = 50;

#[derive(Debug, Default)]
pub(crate) struct Trace {
    events: VecDeque<(u64, String)>,
}

impl Trace {
    pub(crate) fn push(&mut self, at: u64, text: String) {
        if self.events.len() == SHOWN {
            let _ = self.events.pop_front();
        }
        self.events.push_back((at, text));
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.events.iter().map(|(at, text)| format!("t={at:>7} {text}")).collect()
    }
}
