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

use std::sync::{Arc, Mutex, MutexGuard};

use iocluster_socketio::Payload;
use iocluster_socketio::adapter::BroadcastOptions;
use serde_json::Value;

/// The most broadcasts one restore captures; past it, the rest are not
/// kept (the restore goes on with what it has).
const MAX_CAPTURED: usize = 10_000;

/// The captures under way on one worker.
#[derive(Debug, Default)]
pub(crate) struct Captures {
    next_id: std::sync::atomic::AtomicU64,
    /// How many captures are under way: a recorded broadcast takes the lock
    /// only when one is.
    running: std::sync::atomic::AtomicUsize,
    active: Mutex<Vec<Capture>>,
}

#[derive(Debug)]
struct Capture {
    id: u64,
    nsp: String,
    seen: Vec<(BroadcastOptions, Payload)>,
}

impl Captures {
    fn lock(&self) -> MutexGuard<'_, Vec<Capture>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a recorded broadcast of `nsp` for every capture of that
    /// namespace; `payload` is only made when one is under way.
    pub(crate) fn record(
        &self,
        nsp: &str,
        opts: &BroadcastOptions,
        payload: impl FnOnce() -> Option<Payload>,
    ) {
        if self.running.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return;
        }
        let mut active = self.lock();
        if !active.iter().any(|c| c.nsp == nsp) {
            return;
        }
        let Some(payload) = payload() else {
            return;
        };
        for capture in active.iter_mut().filter(|c| c.nsp == nsp) {
            if capture.seen.len() < MAX_CAPTURED {
                capture.seen.push((opts.clone(), payload.clone()));
            }
        }
    }
}

/// One capture; ends when dropped.
pub(crate) struct CaptureGuard {
    captures: Arc<Captures>,
    id: u64,
}

impl CaptureGuard {
    /// Starts capturing the recorded broadcasts of `nsp`.
    pub(crate) fn start(captures: &Arc<Captures>, nsp: &str) -> CaptureGuard {
        let id = captures
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        captures.lock().push(Capture {
            id,
            nsp: nsp.to_owned(),
            seen: Vec::new(),
        });
        captures
            .running
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        CaptureGuard {
            captures: Arc::clone(captures),
            id,
        }
    }

    /// Ends the capture: appends to `missed` (the master's answer) what was
    /// captured that it lacks and that a socket in `rooms` was targeted by.
    pub(crate) fn finish_into(self, missed: &mut Vec<Payload>, rooms: &[String]) {
        let seen = self.take();
        let known: std::collections::HashSet<&str> = missed.iter().filter_map(offset_of).collect();
        let fresh: Vec<Payload> = seen
            .into_iter()
            .filter(|(opts, payload)| {
                offset_of(payload).is_some_and(|offset| !known.contains(offset))
                    && opts.includes(rooms)
            })
            .map(|(_, payload)| payload)
            .collect();
        missed.extend(fresh);
    }

    fn take(&self) -> Vec<(BroadcastOptions, Payload)> {
        let mut active = self.captures.lock();
        match active.iter().position(|c| c.id == self.id) {
            Some(index) => {
                self.captures
                    .running
                    .fetch_sub(1, std::sync::atomic::Ordering::Release);
                active.swap_remove(index).seen
            }
            None => Vec::new(),
        }
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
    fn nothing_is_kept_without_a_capture_and_after_one() {
        let captures = Arc::new(Captures::default());
        let mut made = 0;
        captures.record("/", &to(&[]), || {
            made += 1;
            Some(event(1, "a"))
        });
        assert_eq!(made, 0, "no payload is made when nobody captures");
        drop(CaptureGuard::start(&captures, "/"));
        assert!(captures.lock().is_empty());
    }
}
