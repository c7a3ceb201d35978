//! The server heartbeat: a ping every `ping_interval`, the session closed
//! when no pong comes within `ping_timeout`.

use std::sync::Arc;

use crate::handler::CloseReason;
use crate::packet::Packet;
use crate::session::Session;

/// Starts the heartbeat task of a new session. It ends with the session.
pub(crate) fn spawn(session: Arc<Session>) {
    tokio::spawn(async move {
        let interval = session.shared().config.ping_interval;
        loop {
            tokio::select! {
                _ = session.cancelled().cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            if !session.push_control(Packet::Ping { probe: false }) {
                return;
            }
            if !session.await_pong().await {
                if session.is_open() {
                    session.close_now(CloseReason::PingTimeout);
                }
                return;
            }
        }
    });
}
