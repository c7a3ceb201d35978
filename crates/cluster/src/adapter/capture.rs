//! Recorded broadcasts a worker delivers while one of its restores is under
//! way, and the gate that admits a restored socket between two deliveries.
//!
//! The master answers a restore with the broadcasts of its log up to the
//! moment it reads it; the restored socket joins its namespace on this
//! worker only once the answer is back. A broadcast recorded in between
//! reached this worker (from its own sockets, or relayed) before the socket
//! was there, and after the master's answer was made: without a capture,
//! the client never got it (measured: one gap in twenty reconnects under a
//! broadcast every 50 ms). Each restore captures from the moment its
//! request goes out, and the captured broadcasts the answer lacks (by
//! offset) are appended to the missed ones.
//!
//! A worker delivers other workers' broadcasts on its own thread while its
//! connections run on the runtime's: a broadcast may be delivered while a
//! restored socket joins. So every recorded broadcast is captured and
//! delivered (and, from this worker, published) under one lock, and a
//! restored socket is admitted under it too ([`CaptureGate`]): each
//! broadcast comes before the admission (captured, among the missed
//! events) or after it (live). The lock is re-entrant: a delivery may close
//! a session whose disconnect handlers broadcast on the same thread.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{BroadcastOptions, RestoreGate};
use parking_lot::ReentrantMutex;
use serde_json::Value;

/// The most broadcasts kept for the captures under way; past it, the rest
/// are not kept (the restores go on with what they have).
const MAX_CAPTURED: usize = 10_000;

/// The captures under way on one worker: one log of the recorded
/// broadcasts since the oldest of them started, shared by all. A reconnect
/// storm runs thousands of restores at once; each broadcast is kept once,
/// not once per capture, and a capture takes only what came after its
/// start.
#[derive(Default)]
pub(crate) struct Captures {
    log: ReentrantMutex<RefCell<Log>>,
}

impl std::fmt::Debug for Captures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Captures")
    }
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

    /// Removes capture `key`; what was kept since it started.
    fn finish(&mut self, key: (u64, u64)) -> Vec<Arc<Captured>> {
        if !self.active.remove(&key) {
            return Vec::new();
        }
        let skip = usize::try_from(key.0.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let seen = self.entries.iter().skip(skip).cloned().collect();
        let keep_from = self.active.first().map_or(self.end(), |(start, _)| *start);
        while self.first < keep_from && self.entries.pop_front().is_some() {
            self.first += 1;
        }
        seen
    }
}

impl Captures {
    /// Delivers a recorded broadcast of `nsp` with `deliver`, with no
    /// restored socket being admitted meanwhile, after keeping it for the
    /// captures under way (`payload` is made only when one is).
    pub(crate) fn deliver<R>(
        &self,
        nsp: &str,
        opts: BroadcastOptions,
        payload: impl FnOnce() -> Option<Payload>,
        deliver: impl FnOnce(BroadcastOptions) -> R,
    ) -> R {
        let log = self.log.lock();
        {
            let mut log = log.borrow_mut();
            if !log.active.is_empty() && log.entries.len() < MAX_CAPTURED {
                if let Some(payload) = payload() {
                    log.entries.push_back(Arc::new(Captured {
                        nsp: nsp.to_owned(),
                        opts: opts.clone(),
                        payload,
                    }));
                }
            }
        }
        deliver(opts)
    }
}

/// One capture; ends when admitted or dropped.
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
            let log = captures.log.lock();
            let mut log = log.borrow_mut();
            let key = (log.end(), log.next_id);
            log.next_id += 1;
            log.active.insert(key);
            key
        };
        CaptureGuard {
            captures: Arc::clone(captures),
            nsp: nsp.to_owned(),
            key,
        }
    }

    /// Ends the capture and admits the restored socket: appends to `missed`
    /// (the master's answer) what was captured that it lacks and that a
    /// socket in `rooms` was targeted by, and calls `admit` with it before
    /// any other recorded broadcast is delivered here.
    pub(crate) fn admit(
        self,
        mut missed: Vec<Payload>,
        rooms: &[String],
        admit: &mut dyn FnMut(Vec<Payload>),
    ) {
        let captures = Arc::clone(&self.captures);
        let log = captures.log.lock();
        let seen = log.borrow_mut().finish(self.key);
        if !seen.is_empty() {
            let known: HashSet<&str> = missed.iter().filter_map(offset_of).collect();
            let fresh: Vec<Payload> = seen
                .iter()
                .filter(|captured| {
                    captured.nsp == self.nsp
                        && offset_of(&captured.payload)
                            .is_some_and(|offset| !known.contains(offset))
                        && captured.opts.includes(rooms)
                })
                .map(|captured| captured.payload.clone())
                .collect();
            missed.extend(fresh);
        }
        admit(missed);
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        let log = self.captures.log.lock();
        drop(log.borrow_mut().finish(self.key));
    }
}

/// The gate of a restore with the cluster adapter: its capture, ended when
/// the socket is admitted (see the module's documentation).
pub(crate) struct CaptureGate {
    capture: Mutex<Option<CaptureGuard>>,
    rooms: Vec<String>,
}

impl CaptureGate {
    /// The gate of the capture `capture` for a socket in `rooms`.
    pub(crate) fn new(capture: CaptureGuard, rooms: Vec<String>) -> Self {
        CaptureGate {
            capture: Mutex::new(Some(capture)),
            rooms,
        }
    }
}

impl RestoreGate for CaptureGate {
    fn admit(&self, missed: Vec<Payload>, admit: &mut dyn FnMut(Vec<Payload>)) {
        let capture = self
            .capture
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match capture {
            Some(capture) => capture.admit(missed, &self.rooms, admit),
            None => admit(missed),
        }
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

    /// Delivers nothing: records only.
    fn record(captures: &Captures, nsp: &str, opts: BroadcastOptions, payload: Payload) {
        captures.deliver(nsp, opts, || Some(payload), drop);
    }

    fn numbers(missed: &[Payload]) -> Vec<u64> {
        missed.iter().filter_map(|p| p.args[1].as_u64()).collect()
    }

    /// What a capture admits with `missed` as the master's answer.
    fn admitted(capture: CaptureGuard, missed: Vec<Payload>, rooms: &[String]) -> Vec<u64> {
        let mut admitted = Vec::new();
        capture.admit(missed, rooms, &mut |missed| admitted = numbers(&missed));
        admitted
    }

    #[test]
    fn appends_what_the_answer_lacks_for_the_sockets_rooms_in_order() {
        let captures = Arc::new(Captures::default());
        let capture = CaptureGuard::start(&captures, "/");
        record(&captures, "/", to(&[]), event(1, "a"));
        record(&captures, "/", to(&[]), event(2, "b"));
        record(&captures, "/", to(&["other"]), event(3, "c"));
        record(&captures, "/chat", to(&[]), event(4, "d"));
        record(&captures, "/", to(&["room"]), event(5, "e"));
        let missed = vec![event(0, "z"), event(1, "a")];
        assert_eq!(
            admitted(capture, missed, &["room".to_owned()]),
            [0, 1, 2, 5]
        );
    }

    #[test]
    fn each_capture_takes_what_came_after_its_start_and_the_log_is_trimmed() {
        let captures = Arc::new(Captures::default());
        let first = CaptureGuard::start(&captures, "/");
        record(&captures, "/", to(&[]), event(1, "a"));
        let second = CaptureGuard::start(&captures, "/");
        record(&captures, "/", to(&[]), event(2, "b"));
        assert_eq!(admitted(second, Vec::new(), &[]), [2]);
        let entries = captures.log.lock().borrow().entries.len();
        assert_eq!(entries, 2, "the first still needs both");
        assert_eq!(admitted(first, Vec::new(), &[]), [1, 2]);
        let log = captures.log.lock();
        let log = log.borrow();
        assert!(log.entries.is_empty(), "nobody needs the log any more");
        assert_eq!(log.first, 2);
    }

    #[test]
    fn nothing_is_kept_without_a_capture_and_after_one() {
        let captures = Arc::new(Captures::default());
        let mut made = 0;
        let delivered = captures.deliver(
            "/",
            to(&[]),
            || {
                made += 1;
                Some(event(1, "a"))
            },
            |_| true,
        );
        assert!(delivered);
        assert_eq!(made, 0, "no payload is made when nobody captures");
        drop(CaptureGuard::start(&captures, "/"));
        let log = captures.log.lock();
        let log = log.borrow();
        assert!(log.active.is_empty() && log.entries.is_empty());
    }

    #[test]
    fn no_delivery_runs_on_another_thread_while_a_socket_is_admitted() {
        let captures = Arc::new(Captures::default());
        let gate = CaptureGate::new(CaptureGuard::start(&captures, "/"), Vec::new());
        let mut during = None;
        gate.admit(Vec::new(), &mut |_| {
            let other = Arc::clone(&captures);
            let free = std::thread::spawn(move || other.log.try_lock().is_some());
            // A delivery on this thread (a disconnect handler that
            // broadcasts) does not wait for itself.
            let again = captures.deliver("/", to(&[]), || None, |_| true);
            during = Some((free.join().ok(), again));
        });
        assert_eq!(during, Some((Some(false), true)));
        let other = Arc::clone(&captures);
        let free = std::thread::spawn(move || other.log.try_lock().is_some());
        assert_eq!(free.join().ok(), Some(true), "the gate is open after");
    }
}
