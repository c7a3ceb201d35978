//! What happened, in order, and a wait for what a test expects to happen:
//! a handler or a reader task records, the test awaits. The wait wakes on
//! each new event instead of polling, and is bounded.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::wait::within;

/// A list of events shared between whoever records them and the test.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use iocluster_testkit::{EventLog, WAIT};
/// let log = Arc::new(EventLog::default());
/// let recorder = Arc::clone(&log);
/// tokio::spawn(async move { recorder.push("opened") });
/// log.wait_for(WAIT, "the open", |events| events.contains(&"opened").then_some(()))
///     .await;
/// # });
/// ```
pub struct EventLog<T> {
    events: Mutex<Vec<T>>,
    changed: Notify,
}

impl<T> Default for EventLog<T> {
    fn default() -> Self {
        EventLog {
            events: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }
    }
}

impl<T> EventLog<T> {
    /// The events, even if a panicking test poisoned the lock.
    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `event` and wakes the waits.
    pub fn push(&self, event: T) {
        self.lock().push(event);
        self.changed.notify_waiters();
    }

    /// What `read` makes of the events so far.
    pub fn read<R>(&self, read: impl FnOnce(&[T]) -> R) -> R {
        read(&self.lock())
    }

    /// Waits until `find` makes something of the events so far (checked
    /// now and after each new event), or fails the test after `limit`,
    /// naming `what`.
    pub async fn wait_for<R>(
        &self,
        limit: Duration,
        what: &str,
        mut find: impl FnMut(&[T]) -> Option<R>,
    ) -> R {
        within(limit, what, async {
            loop {
                // Registered before the check: an event pushed between the
                // check and the await still wakes this wait.
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(found) = find(&self.lock()) {
                    return found;
                }
                changed.await;
            }
        })
        .await
    }
}

impl<T: Clone> EventLog<T> {
    /// A copy of the events so far.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }
}
