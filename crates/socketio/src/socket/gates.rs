//! The two gates of a connecting socket, so that the order of Node's
//! socket.io holds on any scheduler: what the server sends is held until
//! CONNECT is out, and what the client sends is queued until the connection
//! handlers are registered.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use iocluster_engineio::SendError;

use super::{DISCONNECTED, IN_OPEN, OUT_OPEN, Socket};
use crate::parser::{Encoded, Packet};

impl Socket {
    /// Sends an encoded packet; held until CONNECT is out.
    pub(crate) fn send_encoded(&self, encoded: &Encoded) -> Result<(), SendError> {
        if self.has(DISCONNECTED) {
            return Err(SendError::Closed);
        }
        if self.has(OUT_OPEN) {
            return self.session.send_many(encoded.messages());
        }
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if self.has(DISCONNECTED) {
            Err(SendError::Closed)
        } else if self.has(OUT_OPEN) {
            self.session.send_many(encoded.messages())
        } else {
            held.push(encoded.clone());
            Ok(())
        }
    }

    /// Queues CONNECT ahead of everything held.
    pub(crate) fn send_connect(&self, connect: &Encoded) {
        let _held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.session.send_many(connect.messages());
    }

    /// Whether sends are waiting for CONNECT to be out.
    pub(crate) fn has_held(&self) -> bool {
        !self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Sends what was held, in order, and lets later sends go out directly.
    /// Whether some of it did not fit in the session's send buffer (the
    /// caller decides what that costs the client: see `Delivery`).
    pub(crate) fn open_out(&self) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut overflowed = false;
        // `take` frees the buffer: a connected socket holds nothing.
        for encoded in std::mem::take(&mut *held) {
            overflowed |= self.session.send_many(encoded.messages()) == Err(SendError::BufferFull);
        }
        self.state.fetch_or(OUT_OPEN, Ordering::AcqRel);
        overflowed
    }

    /// The connection handlers are registered: handles what the client sent
    /// meanwhile, in order, then lets packets through directly.
    pub(crate) fn ready(self: &Arc<Self>) {
        loop {
            let batch = {
                let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
                if inbox.is_empty() {
                    self.state.fetch_or(IN_OPEN, Ordering::AcqRel);
                    return;
                }
                std::mem::take(&mut *inbox)
            };
            for packet in batch {
                self.dispatch(packet);
            }
        }
    }

    /// Handles a packet from the client, or queues it until the connection
    /// handlers are registered.
    pub(crate) fn on_packet(self: &Arc<Self>, packet: Packet) {
        if !self.has(IN_OPEN) {
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            if !self.has(IN_OPEN | DISCONNECTED) {
                inbox.push(packet);
                return;
            }
        }
        if !self.has(DISCONNECTED) {
            self.dispatch(packet);
        }
    }
}
