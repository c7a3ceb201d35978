//! The engine's session events, handed to the Socket.IO clients.

use std::sync::{Arc, Weak};

use iocluster_engineio::{CloseReason, EngineHandler, Message, Session};

use super::ServerShared;
use crate::client::Client;
use crate::reason::DisconnectReason;

/// Forwards engine events to the server.
pub(super) struct EngineBridge(pub(super) Weak<ServerShared>);

impl EngineHandler for EngineBridge {
    fn on_open(&self, session: &Arc<Session>) {
        let Some(server) = self.0.upgrade() else {
            return;
        };
        let client = Client::new(Arc::clone(session), &server);
        server
            .clients()
            .insert(session.id().to_string(), Arc::clone(&client));
        tokio::spawn(client.watch_connect_timeout(server.config.connect_timeout));
    }

    fn on_message(&self, session: &Arc<Session>, message: Message) {
        let Some(server) = self.0.upgrade() else {
            return;
        };
        if let Some(client) = server.client(session.id().as_str()) {
            client.on_message(message);
        }
    }

    fn on_close(&self, session: &Arc<Session>, reason: CloseReason) {
        let Some(server) = self.0.upgrade() else {
            return;
        };
        let client = server.clients().remove(session.id().as_str());
        if let Some(client) = client {
            client.close_sockets(DisconnectReason::from(reason));
        }
    }

    fn on_upgrade(&self, session: &Arc<Session>) {
        let Some(server) = self.0.upgrade() else {
            return;
        };
        let observers = server
            .upgrade_observers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if observers.is_empty() {
            return;
        }
        let Some(client) = server.client(session.id().as_str()) else {
            return;
        };
        for socket in client.connected_sockets() {
            for observer in &observers {
                observer(&socket);
            }
        }
    }
}
