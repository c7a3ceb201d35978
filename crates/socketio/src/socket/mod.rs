//! A socket: one client connected to one namespace.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use iocluster_engineio::{SendError, Session};

use serde_json::Value;
use tokio::sync::oneshot;

use crate::ack::{AckError, AckSender, AckWaiter, PendingAcks};
use crate::adapter::BroadcastOptions;
use crate::namespace::Namespace;
use crate::operators::BroadcastOperator;
use crate::parser::{Encoded, Packet, PacketType, encode};
use crate::payload::Payload;
use crate::reason::DisconnectReason;

mod close;
mod gates;
mod handshake;
mod incoming;

pub use handshake::SocketHandshake;

/// A handle to a socket; handlers receive one.
pub type SocketRef = Arc<Socket>;

type EventHandler = Arc<dyn Fn(&SocketRef, Payload, Option<AckSender>) + Send + Sync>;
type AnyHandler = Arc<dyn Fn(&SocketRef, &str, &Payload) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(&SocketRef, DisconnectReason) + Send + Sync>;
type OutgoingHandler = Arc<dyn Fn(&Socket, &str, &Payload) + Send + Sync>;

/// An observer of every event, one way or the other. One list for both,
/// so that a socket pays for outgoing observers (rare: instrumentation)
/// nothing beyond what its incoming ones cost.
#[derive(Clone)]
enum AnyListener {
    /// `on_any`: events from the client.
    Incoming(AnyHandler),
    /// `on_any_outgoing`: the socket's own emits.
    Outgoing(OutgoingHandler),
}

// The socket's gates. Sends are held until CONNECT has gone out (so the
// client sees CONNECT first and, like from Node, the first emits in later
// reads); packets from the client wait until the connection handlers are
// registered (so no event beats its handler).
/// Sends go straight to the session.
const OUT_OPEN: u8 = 1;
/// The client's packets are handled straight away.
const IN_OPEN: u8 = 2;
/// Gone.
const DISCONNECTED: u8 = 4;

/// A client connected to a namespace. Event handlers, emits, rooms and acks,
/// named as in Node's socket.io.
pub struct Socket {
    id: Arc<str>,
    pid: Option<String>,
    recovered: bool,
    namespace: Namespace,
    session: Arc<Session>,
    /// The `auth` payload of the CONNECT packet; the rest of the handshake
    /// is read from the session's when asked for (see [`Socket::handshake`]).
    auth: Value,
    state: AtomicU8,
    /// Packets sent before CONNECT (by middlewares), flushed after it.
    held: Mutex<Vec<Encoded>>,
    /// Packets from the client that arrived before the connection handlers
    /// were done.
    inbox: Mutex<Vec<Packet>>,
    rooms: Mutex<HashSet<String>>,
    /// One handler per event name. A list: sockets have a handful of
    /// handlers, found faster by comparing names than by hashing them, and
    /// without a hash table's memory in every socket.
    events: RwLock<Vec<(Box<str>, EventHandler)>>,
    any: RwLock<Vec<AnyListener>>,
    disconnect: RwLock<Vec<DisconnectHandler>>,
    acks: PendingAcks,
    data: Mutex<Value>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("nsp", &self.namespace.name())
            .finish_non_exhaustive()
    }
}

impl Socket {
    pub(crate) fn new(
        namespace: Namespace,
        session: Arc<Session>,
        auth: Value,
        id: Arc<str>,
        pid: Option<String>,
        recovered: bool,
        data: Value,
    ) -> Arc<Socket> {
        Arc::new(Socket {
            id,
            pid,
            recovered,
            namespace,
            session,
            auth,
            state: AtomicU8::new(0),
            held: Mutex::new(Vec::new()),
            inbox: Mutex::new(Vec::new()),
            rooms: Mutex::new(HashSet::new()),
            events: RwLock::new(Vec::new()),
            any: RwLock::new(Vec::new()),
            disconnect: RwLock::new(Vec::new()),
            acks: PendingAcks::default(),
            data: Mutex::new(data),
        })
    }

    /// The socket id (20 characters, also the name of its own room).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.id
    }

    /// The private session id used for connection state recovery.
    pub fn pid(&self) -> Option<&str> {
        self.pid.as_deref()
    }

    /// Whether this socket recovered a previous session's state.
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The handshake, as Node's `socket.handshake`. Built from the
    /// Engine.IO session's handshake on each call, so that sockets do not
    /// each keep a copy of its headers and query; for the `auth` payload
    /// alone, [`Socket::auth`] borrows it.
    pub fn handshake(&self) -> SocketHandshake {
        SocketHandshake::new(&self.session, self.auth.clone())
    }

    /// The `auth` payload of the CONNECT packet (`socket.handshake.auth`).
    pub fn auth(&self) -> &Value {
        &self.auth
    }

    /// The Engine.IO session carrying this socket.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Whether the socket is connected.
    pub fn connected(&self) -> bool {
        self.state.load(Ordering::Acquire) & DISCONNECTED == 0
    }

    /// The rooms the socket is in (its own id included).
    pub fn rooms(&self) -> Vec<String> {
        self.lock_rooms().iter().cloned().collect()
    }

    fn lock_rooms(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn room_set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.lock_rooms()
    }

    /// The socket's data (Node's `socket.data`), shared with other servers
    /// through `fetch_sockets`.
    pub fn data(&self) -> Value {
        self.data.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the socket's data.
    pub fn set_data(&self, data: Value) {
        *self.data.lock().unwrap_or_else(|p| p.into_inner()) = data;
        self.track();
    }

    /// The state connection state recovery would restore.
    fn recoverable_state(&self) -> Option<crate::adapter::PersistedSession> {
        let pid = self.pid.as_ref()?;
        self.namespace.recovery()?;
        Some(crate::adapter::PersistedSession {
            sid: self.id.to_string(),
            pid: pid.clone(),
            rooms: self.rooms(),
            data: self.data(),
        })
    }

    /// Tells the adapter the socket's recoverable state changed.
    pub(crate) fn track(&self) {
        if !self.connected() {
            return;
        }
        if let Some(state) = self.recoverable_state() {
            self.namespace.adapter().track_session(&state);
        }
    }

    /// Handles event `event`: the handler gets the arguments and, when the
    /// client asked for one, an [`AckSender`].
    ///
    /// ```no_run
    /// # fn demo(socket: iocluster_socketio::SocketRef) {
    /// socket.on("echo", |_socket, args, ack| {
    ///     if let Some(ack) = ack {
    ///         let _ = ack.send(args);
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on(
        &self,
        event: &str,
        handler: impl Fn(&SocketRef, Payload, Option<AckSender>) + Send + Sync + 'static,
    ) {
        let handler: EventHandler = Arc::new(handler);
        let mut events = self.events.write().unwrap_or_else(|p| p.into_inner());
        match events.iter_mut().find(|(name, _)| **name == *event) {
            Some((_, existing)) => *existing = handler,
            None => events.push((event.into(), handler)),
        }
    }

    /// Handles event `event` with an async handler, run as its own task.
    pub fn on_async<F, Fut>(&self, event: &str, handler: F)
    where
        F: Fn(SocketRef, Payload, Option<AckSender>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.on(event, move |socket, payload, ack| {
            let future = handler(Arc::clone(socket), payload, ack);
            tokio::spawn(future);
        });
    }

    /// Sees every incoming event (Node's `onAny`) before its handler.
    pub fn on_any(&self, handler: impl Fn(&SocketRef, &str, &Payload) + Send + Sync + 'static) {
        self.any
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(AnyListener::Incoming(Arc::new(handler)));
    }

    /// Sees every event this socket emits itself ([`Socket::emit`],
    /// [`Socket::emit_with_ack`]), before it is sent: Node's
    /// `onAnyOutgoing`. Broadcasts (to a room or the namespace) are not
    /// seen: they are encoded once for every target and never pass through
    /// each socket.
    pub fn on_any_outgoing(
        &self,
        handler: impl Fn(&Socket, &str, &Payload) + Send + Sync + 'static,
    ) {
        self.any
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(AnyListener::Outgoing(Arc::new(handler)));
    }

    /// Tells the outgoing observers about an emit (called without the lock
    /// held: an observer may add observers).
    fn notify_outgoing(&self, event: &str, payload: &Payload) {
        let handlers: Vec<OutgoingHandler> = self
            .any
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|listener| match listener {
                AnyListener::Outgoing(handler) => Some(Arc::clone(handler)),
                AnyListener::Incoming(_) => None,
            })
            .collect();
        for handler in handlers {
            handler(self, event, payload);
        }
    }

    /// The `on_any` observers.
    pub(super) fn incoming_listeners(&self) -> Vec<AnyHandler> {
        self.any
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|listener| match listener {
                AnyListener::Incoming(handler) => Some(Arc::clone(handler)),
                AnyListener::Outgoing(_) => None,
            })
            .collect()
    }

    /// Runs when the socket disconnects, with the reason; its rooms are
    /// still readable then.
    pub fn on_disconnect(
        &self,
        handler: impl Fn(&SocketRef, DisconnectReason) + Send + Sync + 'static,
    ) {
        self.disconnect
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(handler));
    }

    /// Emits an event to this client.
    ///
    /// With connection state recovery on, it goes through the adapter like a
    /// broadcast to this socket's room, so that it is kept for recovery.
    pub fn emit(&self, event: &str, payload: impl Into<Payload>) -> Result<(), SendError> {
        let payload = payload.into();
        self.notify_outgoing(event, &payload);
        let packet = event_packet(self.namespace.name(), event, payload, None);
        if self.namespace.recovery().is_some() {
            let opts = BroadcastOptions {
                rooms: vec![self.id.to_string()],
                ..Default::default()
            };
            self.namespace.adapter().broadcast(packet, opts);
            Ok(())
        } else {
            self.send_packet(&packet)
        }
    }

    /// Emits an event and waits up to `timeout` for the client's ack.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: impl Into<Payload>,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let payload = payload.into();
        self.notify_outgoing(event, &payload);
        let id = self.namespace.next_ack_id();
        let (sender, receiver) = oneshot::channel();
        self.acks.insert(id, AckWaiter::One(sender));
        let packet = event_packet(self.namespace.name(), event, payload, Some(id));
        if let Err(error) = self.send_packet(&packet) {
            self.acks.remove(id);
            return Err(error.into());
        }
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                self.acks.remove(id);
                crate::stats::ACK_TIMEOUTS.add(1);
                Err(AckError::Timeout)
            }
        }
    }

    /// Joins rooms.
    pub fn join<I, S>(&self, rooms: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let rooms: Vec<String> = rooms.into_iter().map(Into::into).collect();
        self.namespace.local_handle().join(self, &rooms);
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.namespace
            .local_handle()
            .leave(self, &[room.to_owned()]);
    }

    /// A broadcast to every socket of the namespace but this one.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.namespace.clone()).except_socket(self.id.to_string())
    }

    /// A broadcast to `room`, this socket excluded.
    pub fn to(&self, room: impl Into<String>) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// Same as [`Socket::to`].
    pub fn within(&self, room: impl Into<String>) -> BroadcastOperator {
        self.to(room)
    }

    /// A broadcast excluding `room` and this socket.
    pub fn except(&self, room: impl Into<String>) -> BroadcastOperator {
        self.broadcast().except(room)
    }

    /// Disconnects the socket (`server namespace disconnect`); with `close`,
    /// closes the whole connection.
    pub fn disconnect(self: &Arc<Self>, close: bool) {
        if close {
            if let Some(client) = self
                .namespace
                .server()
                .and_then(|s| s.client(self.session.id().as_str()))
            {
                client.disconnect_all();
            }
            self.session.close();
        } else {
            let packet = Packet {
                kind: PacketType::Disconnect,
                nsp: self.namespace.name().to_owned(),
                id: None,
                data: None,
                attachments: Vec::new(),
            };
            // Whatever is held goes first, then DISCONNECT.
            let _ = self.open_out();
            // The reason is claimed before DISCONNECT is queued: the
            // connection's thread may write it, and the client close its
            // transport, before this thread goes on (a disconnect ordered by
            // another worker runs on the control loop's thread), and that
            // transport close must not become the reason the handlers see.
            if !self.claim_close() {
                return;
            }
            let _ = self.session.send_many(encode(&packet).messages());
            self.close_claimed(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Encodes and sends a packet to this client.
    pub(crate) fn send_packet(&self, packet: &Packet) -> Result<(), SendError> {
        self.send_encoded(&encode(packet))
    }

    pub(super) fn has(&self, gate: u8) -> bool {
        self.state.load(Ordering::Acquire) & gate != 0
    }

    pub(crate) fn acks(&self) -> &PendingAcks {
        &self.acks
    }
}

/// An EVENT packet: `[event, ...args]`.
pub(crate) fn event_packet(nsp: &str, event: &str, payload: Payload, id: Option<u64>) -> Packet {
    let mut data = Vec::with_capacity(payload.args.len() + 1);
    data.push(Value::String(event.to_owned()));
    data.extend(payload.args);
    Packet {
        kind: PacketType::Event,
        nsp: nsp.to_owned(),
        id,
        data: Some(Value::Array(data)),
        attachments: payload.attachments,
    }
}
