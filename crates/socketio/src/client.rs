//! One Engine.IO session seen from Socket.IO: its decoder and the sockets it
//! has in each namespace.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use iocluster_engineio::{Message, Session, random_base64url};
use serde_json::{Value, json};

use crate::namespace::{ConnectError, Namespace};
use crate::parser::{Decoder, Packet, PacketType, encode};
use crate::reason::DisconnectReason;
use crate::server::ServerShared;
use crate::socket::{Socket, SocketRef};

/// The longest a connect waits for its CONNECT packet to be written.
const CONNECT_WRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// After CONNECT is written, how long the connection handlers' first emits
/// wait, so that a client reading one frame per read (the official test
/// suite's) sees CONNECT on its own, as it does from Node.
const CONNECT_READ_GAP: std::time::Duration = std::time::Duration::from_millis(2);

pub(crate) struct Client {
    session: Arc<Session>,
    server: Weak<ServerShared>,
    decoder: Mutex<Decoder>,
    sockets: Mutex<HashMap<String, SocketRef>>,
    connecting: Mutex<HashSet<String>>,
    connected_once: AtomicBool,
    /// Wakes the connect-timeout watch at the first connect.
    first_connect: tokio::sync::Notify,
}

impl Client {
    pub(crate) fn new(session: Arc<Session>, server: &Arc<ServerShared>) -> Arc<Client> {
        Arc::new(Client {
            session,
            server: Arc::downgrade(server),
            decoder: Mutex::new(Decoder::new(server.config.decoder_limits)),
            sockets: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashSet::new()),
            connected_once: AtomicBool::new(false),
            first_connect: tokio::sync::Notify::new(),
        })
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<String, SocketRef>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client's sockets now, one per namespace it is connected to.
    pub(crate) fn connected_sockets(&self) -> Vec<SocketRef> {
        self.sockets().values().cloned().collect()
    }

    /// Whether the client ever connected to a namespace (Node clears its
    /// connect timeout at the first one).
    pub(crate) fn connected_once(&self) -> bool {
        self.connected_once.load(Ordering::Acquire)
    }

    /// Closes the session unless it joins a namespace within `timeout`
    /// (Node's connectTimeout); the watch ends at the first connect.
    pub(crate) async fn watch_connect_timeout(self: Arc<Self>, timeout: std::time::Duration) {
        let connected = self.first_connect.notified();
        tokio::pin!(connected);
        connected.as_mut().enable();
        if self.connected_once() {
            return;
        }
        tokio::select! {
            _ = self.session.closed() => {}
            _ = connected => {}
            _ = tokio::time::sleep(timeout) => {
                if !self.connected_once() {
                    tracing::debug!(sid = %self.session.id(), "no namespace joined within connect_timeout");
                    self.session.close();
                }
            }
        }
    }

    /// Decodes a message from the client and acts on the packet.
    pub(crate) fn on_message(self: &Arc<Self>, message: Message) {
        let decoded = {
            let mut decoder = self.decoder.lock().unwrap_or_else(|p| p.into_inner());
            match message {
                Message::Text(text) => decoder.decode_text(text.as_str()),
                Message::Binary(data) => decoder.decode_binary(data),
            }
        };
        match decoded {
            Ok(Some(packet)) => self.on_packet(packet),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(sid = %self.session.id(), %error, "malformed socket.io packet: closing the client");
                self.close_sockets(DisconnectReason::ParseError);
                self.session.close();
            }
        }
    }

    fn on_packet(self: &Arc<Self>, packet: Packet) {
        match packet.kind {
            PacketType::Connect => {
                let Some(server) = self.server.upgrade() else {
                    return;
                };
                if self.sockets().contains_key(&packet.nsp) {
                    tracing::debug!(nsp = %packet.nsp, "CONNECT to a namespace already joined ignored");
                    return;
                }
                let fresh = self
                    .connecting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(packet.nsp.clone());
                if !fresh {
                    tracing::debug!(nsp = %packet.nsp, "second CONNECT to a namespace ignored");
                    return;
                }
                let auth = packet.data.unwrap_or_else(|| json!({}));
                tokio::spawn(Arc::clone(self).connect(server, packet.nsp, auth));
            }
            kind => {
                let socket = self.sockets().get(&packet.nsp).cloned();
                let Some(socket) = socket else {
                    tracing::debug!(nsp = %packet.nsp, "packet for a namespace not connected ignored");
                    return;
                };
                if kind == PacketType::ConnectError {
                    tracing::debug!(nsp = %packet.nsp, "CONNECT_ERROR from a client ignored");
                    return;
                }
                socket.on_packet(packet);
            }
        }
    }

    /// Connects the client to a namespace: lookup, recovery, middlewares,
    /// CONNECT, connection handlers.
    async fn connect(self: Arc<Self>, server: Arc<ServerShared>, name: String, auth: Value) {
        let result = self.try_connect(&server, &name, auth).await;
        self.connecting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&name);
        if let Err(error) = result {
            let mut data = json!({ "message": error.message });
            if let Some(extra) = error.data {
                data["data"] = extra;
            }
            let packet = Packet {
                kind: PacketType::ConnectError,
                nsp: name,
                id: None,
                data: Some(data),
                attachments: Vec::new(),
            };
            let _ = self.session.send_many(encode(&packet).messages());
        }
    }

    async fn try_connect(
        &self,
        server: &Arc<ServerShared>,
        name: &str,
        auth: Value,
    ) -> Result<(), ConnectError> {
        let namespace: Namespace = server
            .namespace_for(name, &auth)
            .ok_or_else(|| ConnectError::new("Invalid namespace"))?;
        let auth = match auth {
            Value::Object(_) => auth,
            _ => json!({}),
        };
        let recovery = namespace.recovery().cloned();
        let restored = match (&recovery, auth.get("pid"), auth.get("offset")) {
            (Some(_), Some(Value::String(pid)), Some(Value::String(offset))) => {
                let restored = namespace
                    .adapter()
                    .restore_session(pid.clone(), offset.clone())
                    .await;
                let counter = match restored {
                    Some(_) => &crate::stats::RECOVERED,
                    None => &crate::stats::NOT_RECOVERED,
                };
                counter.add(1);
                restored
            }
            _ => None,
        };
        let socket = match &restored {
            Some(restored) => Socket::new(
                namespace.clone(),
                Arc::clone(&self.session),
                auth,
                Arc::from(restored.session.sid.as_str()),
                Some(restored.session.pid.clone()),
                true,
                restored.session.data.clone(),
            ),
            None => Socket::new(
                namespace.clone(),
                Arc::clone(&self.session),
                auth,
                Arc::from(random_base64url::<15>()),
                recovery.as_ref().map(|_| random_base64url::<15>()),
                false,
                Value::Null,
            ),
        };
        let skip = restored.is_some() && recovery.as_ref().is_some_and(|r| r.skip_middlewares);
        if !skip {
            for middleware in namespace.middlewares() {
                middleware(Arc::clone(&socket)).await?;
            }
        }
        if !self.session.is_open() {
            return Ok(());
        }
        let rooms = restored.as_ref().map(|r| r.session.rooms.clone());
        let (missed, hold) = restored.map(|r| (r.missed, r.hold)).unwrap_or_default();
        // Through the adapter's gate: no broadcast is delivered here while
        // the socket joins and its CONNECT and missed events are queued. The
        // hold is dropped after: the socket is in the namespace and its
        // missed events are queued.
        hold.admit(missed, &mut |missed| {
            namespace.insert(&socket);
            if let Some(rooms) = &rooms {
                socket.join(rooms.iter().cloned());
            }
            self.sockets().insert(name.to_owned(), Arc::clone(&socket));
            self.connecting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name);
            self.connected_once.store(true, Ordering::Release);
            self.first_connect.notify_waiters();
            let mut data = json!({ "sid": socket.id() });
            if let Some(pid) = socket.pid() {
                data["pid"] = Value::String(pid.to_owned());
            }
            let connect = Packet {
                kind: PacketType::Connect,
                nsp: name.to_owned(),
                id: None,
                data: Some(data),
                attachments: Vec::new(),
            };
            socket.send_connect(&encode(&connect));
            for missed in missed {
                let packet = Packet {
                    kind: PacketType::Event,
                    nsp: name.to_owned(),
                    id: None,
                    data: Some(Value::Array(missed.args)),
                    attachments: missed.attachments,
                };
                let _ = socket.send_packet(&packet);
            }
        });
        drop(hold);
        for observer in server.connection_observers() {
            observer(&socket);
        }
        for handler in namespace.connection_handlers() {
            handler(&socket);
        }
        socket.ready();
        // Node writes CONNECT before anything the connection handlers emit,
        // in its own write: over WebSocket, let it go out (briefly) first.
        if self.session.transport() == iocluster_engineio::TransportKind::WebSocket {
            let _ = tokio::time::timeout(CONNECT_WRITE_WAIT, self.session.drained()).await;
            if socket.has_held() {
                tokio::time::sleep(CONNECT_READ_GAP).await;
            }
        }
        // What the handlers emitted meanwhile, and did not fit: with
        // recovery, the client reconnects and recovers it (as a broadcast
        // that overflows, see `LocalNamespace::broadcast`).
        if socket.open_out() && socket.pid().is_some() {
            self.session.close();
        }
        Ok(())
    }

    /// Forgets a namespace's socket (it disconnected).
    pub(crate) fn forget(&self, namespace: &str) {
        self.sockets().remove(namespace);
    }

    /// Disconnects every socket of the client with DISCONNECT packets.
    pub(crate) fn disconnect_all(&self) {
        let sockets: Vec<SocketRef> = self.sockets().values().cloned().collect();
        for socket in sockets {
            socket.disconnect(false);
        }
    }

    /// Every socket leaves for `reason` (the connection is gone).
    pub(crate) fn close_sockets(&self, reason: DisconnectReason) {
        let sockets: Vec<SocketRef> = self.sockets().drain().map(|(_, s)| s).collect();
        for socket in sockets {
            socket.on_close(reason);
        }
    }
}
