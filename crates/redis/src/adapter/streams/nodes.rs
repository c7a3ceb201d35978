//! The other servers of a namespace, as `ClusterAdapterWithHeartbeat`
//! knows them: every uid that wrote to the stream (the emitter's aside),
//! alive until it says `ADAPTER_CLOSE` or writes nothing for the heartbeat
//! timeout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The uid Node's emitter writes with: not a server.
const EMITTER_UID: &str = "emitter";

/// Servers seen, by uid, with when they last wrote.
#[derive(Debug)]
pub(crate) struct Nodes {
    timeout: Duration,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Nodes {
    pub(crate) fn new(timeout: Duration) -> Self {
        Nodes {
            timeout,
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Server `uid` wrote something.
    pub(crate) fn seen(&self, uid: &str) {
        if uid.is_empty() || uid == EMITTER_UID {
            return;
        }
        let now = Instant::now();
        let mut seen = self.lock();
        match seen.get_mut(uid) {
            Some(at) => *at = now,
            None => {
                seen.insert(uid.to_owned(), now);
            }
        }
    }

    /// Server `uid` closed its adapter.
    pub(crate) fn remove(&self, uid: &str) {
        self.lock().remove(uid);
    }

    /// The servers alive now (the silent ones are forgotten).
    pub(crate) fn alive(&self) -> Vec<String> {
        let now = Instant::now();
        let mut seen = self.lock();
        seen.retain(|_, at| now.duration_since(*at) <= self.timeout);
        seen.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_count_until_they_close_or_fall_silent() {
        let nodes = Nodes::new(Duration::from_millis(50));
        nodes.seen("a");
        nodes.seen("b");
        nodes.seen("emitter");
        assert_eq!(nodes.alive().len(), 2, "the emitter is no server");
        nodes.remove("a");
        assert_eq!(nodes.alive(), vec!["b".to_owned()]);
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            nodes.alive().is_empty(),
            "silent past the heartbeat timeout"
        );
    }
}
