//! The server heartbeat: a ping every `ping_interval`, the session closed
//! when no pong comes within `ping_timeout`.

use std::sync::Arc;

use tokio::time::Instant;

use crate::handler::CloseReason;
use crate::packet::Packet;
use crate::session::Session;

/// Starts the heartbeat task of a new session. It ends with the session.
///
/// Deadlines are absolute (from the handshake, then from each pong), so
/// scheduling delays do not add up: a silent client is closed at
/// `ping_interval + ping_timeout` after its handshake, as in Node.
pub(crate) fn spawn(session: Arc<Session>) {
    let started = Instant::now();
    tokio::spawn(async move {
        let config = &session.shared().config;
        let (interval, timeout) = (config.ping_interval, config.ping_timeout);
        let mut ping_at = started + interval;
        loop {
            tokio::select! {
                _ = session.cancelled().cancelled() => return,
                _ = tokio::time::sleep_until(ping_at) => {}
            }
            if !session.push_control(Packet::Ping { probe: false }) {
                return;
            }
            if !session.await_pong(ping_at + timeout).await {
                if session.is_open() {
                    session.close_now(CloseReason::PingTimeout);
                }
                return;
            }
            ping_at = Instant::now() + interval;
        }
    });
}
