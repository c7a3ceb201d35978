//! Leaving a namespace, whoever ends it (the client, the server, the
//! transport): the disconnect handlers run once, the session is kept for
//! recovery when the reason allows it, rooms are left, waiting acks fail.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DISCONNECTED, DisconnectHandler, Socket};
use crate::parser::PacketType;
use crate::reason::DisconnectReason;

impl Socket {
    /// Leaves the namespace: handlers told, session kept for recovery when
    /// the reason allows, rooms left, waiting acks failed.
    pub(crate) fn on_close(self: &Arc<Self>, reason: DisconnectReason) {
        if self.claim_close() {
            self.close_claimed(reason);
        }
    }

    /// Marks the socket as leaving; false when it already was. Whoever
    /// claims it gives the reason: later closes (the transport's, say) are
    /// no-ops.
    pub(super) fn claim_close(&self) -> bool {
        self.state.fetch_or(DISCONNECTED, Ordering::AcqRel) & DISCONNECTED == 0
    }

    /// Leaves the namespace, once [`Self::claim_close`] said this caller does.
    pub(super) fn close_claimed(self: &Arc<Self>, reason: DisconnectReason) {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // A DISCONNECT still queued (it came while the connection handlers
        // ran) is why the socket left, whatever the transport did next.
        let left = {
            let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
            let left = inbox.iter().any(|p| p.kind == PacketType::Disconnect);
            inbox.clear();
            left
        };
        let reason = if left {
            DisconnectReason::ClientNamespaceDisconnect
        } else {
            reason
        };
        let handlers: Vec<DisconnectHandler> = self
            .disconnect
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for handler in handlers {
            handler(self, reason);
        }
        if let Some(state) = self.recoverable_state() {
            if reason.is_recoverable() {
                self.namespace.adapter().persist_session(state);
            } else {
                self.namespace.adapter().forget_session(&state.pid);
            }
        }
        self.namespace.local_handle().remove(self);
        if let Some(client) = self
            .namespace
            .server()
            .and_then(|s| s.client(self.session.id().as_str()))
        {
            client.forget(self.namespace.name());
        }
        self.acks.clear();
        self.events
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.any.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.disconnect
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
