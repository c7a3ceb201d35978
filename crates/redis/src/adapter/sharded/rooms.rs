//! The dynamic subscription modes: one channel per room while the room has
//! a socket on this server (Node subscribes on `create-room` and
//! unsubscribes on `delete-room`).
//!
//! Room events arrive on whichever thread changed the room, and two of
//! them may be seen out of order; so an event only marks its room, and one
//! task per namespace brings each marked room's subscription in line with
//! the room as it is *now*. The marks are a set: bounded by the number of
//! rooms, however many events there are.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::PubsubInterface;
use iocluster_socketio::RoomEvent;
use tokio::sync::Notify;

use super::transport::ShardedCore;

/// How long a failed (un)subscription waits before it is tried again.
const RETRY: Duration = Duration::from_millis(200);

/// Rooms whose subscription may be out of date.
#[derive(Default)]
pub(super) struct RoomSync {
    marked: Mutex<HashSet<String>>,
    wake: Notify,
    closed: AtomicBool,
}

impl RoomSync {
    /// A room event of the namespace: created and deleted rooms are marked.
    pub(super) fn on_room_event(&self, event: &RoomEvent) {
        let room = match event {
            RoomEvent::Create(room) | RoomEvent::Delete(room) => room,
            _ => return,
        };
        self.mark(room.clone());
    }

    fn mark(&self, room: String) {
        self.marked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(room);
        self.wake.notify_one();
    }

    /// Ends the task, which unsubscribes every room it subscribed.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn take(&self) -> HashSet<String> {
        std::mem::take(&mut *self.marked.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Keeps the room channels of `core` (`{channel}{room}#`) subscribed while
/// their rooms exist, until [`RoomSync::close`] or the adapter is gone.
pub(super) async fn run(
    core: Weak<ShardedCore>,
    channel: String,
    sync: Arc<RoomSync>,
    subscriber: SubscriberClient,
) {
    let room_channel = |room: &str| format!("{channel}{room}#");
    let mut subscribed: HashSet<String> = HashSet::new();
    loop {
        sync.wake.notified().await;
        if sync.closed.load(Ordering::Acquire) {
            break;
        }
        let Some(core) = core.upgrade() else { break };
        let mut failed = false;
        for room in sync.take() {
            let wanted = core.local.has_room(&room) && core.subscribes_to_room(&room);
            let channel = room_channel(&room);
            if wanted && !subscribed.contains(&room) {
                match subscriber.ssubscribe(channel).await {
                    Ok(()) => {
                        subscribed.insert(room);
                    }
                    Err(error) => {
                        tracing::warn!(%error, room, "redis SSUBSCRIBE failed; will retry");
                        sync.marked
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(room);
                        failed = true;
                    }
                }
            } else if !wanted && subscribed.remove(&room) {
                if let Err(error) = subscriber.sunsubscribe(channel).await {
                    tracing::debug!(%error, room, "redis SUNSUBSCRIBE failed");
                }
            }
        }
        drop(core);
        if failed {
            tokio::time::sleep(RETRY).await;
            sync.wake.notify_one();
        }
    }
    for room in subscribed {
        let _ = subscriber.sunsubscribe(room_channel(&room)).await;
    }
}
