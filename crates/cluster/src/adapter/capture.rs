//! Recorded broadcasts a worker applies while one of its restores waits for
//! the master.
//!
//! The master answers a restore with the broadcasts of its log up to the
//! moment it reads it; the restored socket joins its rooms on this worker
//! only once the answer is back. A broadcast recorded in between reached
//! this worker (from its own sockets, or relayed) before the socket was in
//! any room, and after the master's answer was made: without a capture,
//! the client never got it (measured: one gap in twenty reconnects under a
//! broadcast every 50 ms). Each restore captures from the moment its
//! request goes out until its answer is read, and the captured broadcasts
//! the answer lacks (by offset) are appended to the missed ones. From then
//! on until the socket joins its rooms nothing awaits, so nothing else can
//! be applied in between on the worker's runtime thread.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use iocluster_socketio::Payload;
use iocluster_socketio::adapter::BroadcastOptions;
use serde_json::Value;

/// The most broadcasts kept for the captures under way; past it, the rest
/// are not kept (the restores go on with what they have).
const MAX_CAPTURED: usize = 10_000;

/// The captures under way on one worker: one log of the recorded
/// broadcasts since the oldest of them started, shared by all. A reconnect
/// storm runs thousands of restores at once; each broadcast is kept once,
/// not once per capture, and a capture takes only what came after its
/// start.
#[derive(Debug, Default)]
pub(crate) struct Captures {
    /// How many captures are under way: a recorded broadcast takes the lock
    /// only when one is.
    running: AtomicUsize,
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    /// The sequence number of `entries`' front.
    first: u64,
    entries: VecDeque<Arc<Captured>>,
    /// Every capture under way: (its start, its id), oldest start first.
    active: BTreeSet<(u64, u64)>,
    next_id: u64,
}

#[derive(Debug)]
struct Captured {
    nsp: String,
    opts: BroadcastOptions,
    payload: Payload,
}

impl Log {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Drops what no capture under way needs any more.
    fn trim(&mut self) {
        let keep_from = self.active.first().map_or(self.end(), |(start, _)| *start);
        while self.first < keep_from && self.entries.pop_front().is_some() {
            self.first += 1;
        }
    }
}

impl Captures {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a recorded broadcast of `nsp` for the captures under way;
    /// `payload` is only made when one is.
    pub(crate) fn record(
        &self,
        nsp: &str,
        opts: &BroadcastOptions,
        payload: impl FnOnce() -> Option<Payload>,
    ) {
        if self.running.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut log = self.lock();
        if log.active.is_empty() || log.entries.len() >= MAX_CAPTURED {
            return;
        }
        let Some(payload) = payload() else {
            return;
        };
        log.entries.push_back(Arc::new(Captured {
            nsp: nsp.to_owned(),
            opts: opts.clone(),
            payload,
        }));
    }
}

/// One capture; ends when dropped.
pub(crate) struct CaptureGuard {
    captures: Arc<Captures>,
    nsp: String,
    /// (start, id) in the log's `active`.
    key: (u64, u64),
}

impl CaptureGuard {
    /// Starts capturing the recorded broadcasts of `nsp`.
    pub(crate) fn start(captures: &Arc<Captures>, nsp: &str) -> CaptureGuard {
        let key = {
            let mut log = captures.lock();
            let key = (log.end(), log.next_id);
            log.next_id += 1;
            log.active.insert(key);
            key
        };
        captures.running.fetch_add(1, Ordering::Release);
        CaptureGuard {
            captures: Arc::clone(captures),
            nsp: nsp.to_owned(),
            key,
        }
    }

    /// Ends the capture: appends to `missed` (the master's answer) what was
    /// captured that it lacks and that a socket in `rooms` was targeted by.
    pub(crate) fn finish_into(self, missed: &mut Vec<Payload>, rooms: &[String]) {
        let seen = self.take();
        if seen.is_empty() {
            return;
        }
        let known: HashSet<&str> = missed.iter().filter_map(offset_of).collect();
        let fresh: Vec<Payload> = seen
            .iter()
            .filter(|captured| {
                captured.nsp == self.nsp
                    && offset_of(&captured.payload).is_some_and(|offset| !known.contains(offset))
                    && captured.opts.includes(rooms)
            })
            .map(|captured| captured.payload.clone())
            .collect();
        missed.extend(fresh);
    }

    /// Leaves the log: what was kept since this capture started.
    fn take(&self) -> Vec<Arc<Captured>> {
        let mut log = self.captures.lock();
        if !log.active.remove(&self.key) {
            return Vec::new();
        }
        self.captures.running.fetch_sub(1, Ordering::Release);
        let skip = usize::try_from(self.key.0.saturating_sub(log.first)).unwrap_or(usize::MAX);
        let seen = log.entries.iter().skip(skip).cloned().collect();
        log.trim();
        seen
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// A recorded event's offset: its last argument.
fn offset_of(payload: &Payload) -> Option<&str> {
    payload.args.last().and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64, offset: &str) -> Payload {
        Payload {
            args: vec![Value::from("tick"), Value::from(n), Value::from(offset)],
            attachments: Vec::new(),
        }
    }

    fn to(rooms: &[&str]) -> BroadcastOptions {
        BroadcastOptions {
            rooms: rooms.iter().map(|r| (*r).to_owned()).collect(),
            ..BroadcastOptions::default()
        }
    }

    #[test]
    fn appends_what_the_answer_lacks_for_the_sockets_rooms_in_order() {
        let captures = Arc::new(Captures::default());
        let capture = CaptureGuard::start(&captures, "/");
        captures.record("/", &to(&[]), || Some(event(1, "a")));
        captures.record("/", &to(&[]), || Some(event(2, "b")));
        captures.record("/", &to(&["other"]), || Some(event(3, "c")));
        captures.record("/chat", &to(&[]), || Some(event(4, "d")));
        captures.record("/", &to(&["room"]), || Some(event(5, "e")));
        let mut missed = vec![event(0, "z"), event(1, "a")];
        capture.finish_into(&mut missed, &["room".to_owned()]);
        let numbers: Vec<u64> = missed.iter().filter_map(|p| p.args[1].as_u64()).collect();
        assert_eq!(numbers, [0, 1, 2, 5]);
    }

    #[test]
    fn each_capture_takes_what_came_after_its_start_and_the_log_is_trimmed() {
        let captures = Arc::new(Captures::default());
        let first = CaptureGuard::start(&captures, "/");
        captures.record("/", &to(&[]), || Some(event(1, "a")));
        let second = CaptureGuard::start(&captures, "/");
        captures.record("/", &to(&[]), || Some(event(2, "b")));
        let numbers = |missed: &[Payload]| -> Vec<u64> {
            missed.iter().filter_map(|p| p.args[1].as_u64()).collect()
        };
        let mut missed = Vec::new();
        second.finish_into(&mut missed, &[]);
        assert_eq!(numbers(&missed), [2]);
        assert_eq!(
            captures.lock().entries.len(),
            2,
            "the first still needs both"
        );
        let mut missed = Vec::new();
        first.finish_into(&mut missed, &[]);
        assert_eq!(numbers(&missed), [1, 2]);
        let log = captures.lock();
        assert!(log.entries.is_empty(), "nobody needs the log any more");
        assert_eq!(log.first, 2);
    }

    #[test]
    fn nothing_is_kept_without_a_capture_and_after_one() {
        let captures = Arc::new(Captures::default());
        let mut made = 0;
        captures.record("/", &to(&[]), || {
            made += 1;
            Some(event(1, "a"))
        });
        assert_eq!(made, 0, "no payload is made when nobody captures");
        drop(CaptureGuard::start(&captures, "/"));
        let log = captures.lock();
        assert!(log.active.is_empty() && log.entries.is_empty());
    }
}
