//! What adapters do to this server's sockets of a namespace: broadcast,
//! collect acks, fetch, join, leave, disconnect, deliver server-side
//! events. Adapters hold a [`LocalNamespace`] (a weak handle), never the
//! namespace itself.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use iocluster_engineio::SendError;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{NamespaceShared, RoomEvent, ServerAck, read};
use crate::ack::{AckWaiter, LocalAcks};
use crate::adapter::{BroadcastOptions, SocketInfo};
use crate::config::RecoveryConfig;
use crate::parser::{Encoded, Packet, encode};
use crate::payload::Payload;
use crate::socket::{Socket, SocketRef};

/// The operations an adapter performs on this server's sockets of a
/// namespace. Holds the namespace weakly: once it is gone, they do nothing.
#[derive(Clone)]
pub struct LocalNamespace(pub(super) Weak<NamespaceShared>);

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LocalNamespace").field(&self.name()).finish()
    }
}

impl LocalNamespace {
    fn get(&self) -> Option<Arc<NamespaceShared>> {
        self.0.upgrade()
    }

    /// The namespace name.
    pub fn name(&self) -> String {
        self.get().map(|n| n.name.clone()).unwrap_or_default()
    }

    /// The recovery options of the server, when recovery is on.
    pub fn recovery(&self) -> Option<RecoveryConfig> {
        self.get().and_then(|n| n.recovery.clone())
    }

    /// Sees this namespace's room changes on this server (create, delete,
    /// join, leave), as Node's adapter emits `create-room`/`delete-room`:
    /// for adapters that subscribe per room. Called after the change, on
    /// the thread that made it, with no lock held; two changes made on two
    /// threads may be seen in either order, so check
    /// [`has_room`](LocalNamespace::has_room) for the current state. Unlike
    /// [`Namespace::on_room_event`], it sees this namespace only, never
    /// the other children of a dynamic namespace.
    pub fn on_room_event(&self, handler: impl Fn(&RoomEvent) + Send + Sync + 'static) {
        if let Some(ns) = self.get() {
            ns.local_room_events
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::new(handler));
        }
    }

    /// Whether `room` has a socket of this server.
    pub fn has_room(&self, room: &str) -> bool {
        self.get().is_some_and(|ns| {
            ns.rooms
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(room)
        })
    }

    /// Whether `id` is a socket of this server (so also its own room).
    pub fn has_socket(&self, id: &str) -> bool {
        self.get().is_some_and(|ns| {
            ns.sockets
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id)
        })
    }

    /// Calls `f` on every targeted socket of this server, each once.
    fn apply(&self, opts: &BroadcastOptions, mut f: impl FnMut(&SocketRef)) {
        let Some(ns) = self.get() else { return };
        let sockets = ns.sockets.read().unwrap_or_else(|p| p.into_inner());
        let rooms = ns.rooms.read().unwrap_or_else(|p| p.into_inner());
        let except: HashSet<&Arc<str>> = opts
            .except
            .iter()
            .filter_map(|room| rooms.get(room))
            .flatten()
            .collect();
        if opts.rooms.is_empty() {
            for (id, socket) in sockets.iter() {
                if !except.contains(id) {
                    f(socket);
                }
            }
            return;
        }
        let mut seen: HashSet<&Arc<str>> = HashSet::new();
        for room in &opts.rooms {
            for id in rooms.get(room).into_iter().flatten() {
                if except.contains(id) || !seen.insert(id) {
                    continue;
                }
                if let Some(socket) = sockets.get(id) {
                    f(socket);
                }
            }
        }
    }

    fn targets(&self, opts: &BroadcastOptions) -> Vec<SocketRef> {
        let mut targets = Vec::new();
        self.apply(opts, |socket| targets.push(Arc::clone(socket)));
        targets
    }

    /// Sends an encoded packet to the targeted sockets of this server;
    /// returns how many were sent to.
    pub fn broadcast(&self, packet: &Encoded, opts: &BroadcastOptions) -> usize {
        let mut delivery = Delivery::default();
        self.apply(opts, |socket| delivery.deliver(socket, packet, opts));
        delivery.finish()
    }

    /// Sends `packet` to this server's sockets that `opts` targets, as
    /// [`LocalNamespace::broadcast`]; the packet is encoded once, on the
    /// first target, and not at all when no socket here is targeted (a
    /// server receives every broadcast of its fleet, most often for rooms
    /// it has no member of).
    pub fn broadcast_packet(&self, packet: &Packet, opts: &BroadcastOptions) -> usize {
        let mut encoded: Option<Encoded> = None;
        let mut delivery = Delivery::default();
        self.apply(opts, |socket| {
            let encoded = encoded.get_or_insert_with(|| encode(packet));
            delivery.deliver(socket, encoded, opts);
        });
        delivery.finish()
    }

    /// Sends an event packet asking for acks to the targeted sockets of this
    /// server; the replies arrive through the returned [`LocalAcks`].
    pub fn broadcast_with_ack(&self, mut packet: Packet, opts: &BroadcastOptions) -> LocalAcks {
        let (sender, receiver) = mpsc::unbounded_channel();
        let Some(ns) = self.get() else {
            return LocalAcks::new(0, receiver, Vec::new());
        };
        let id = ns.ack_ids.fetch_add(1, Ordering::Relaxed);
        packet.id = Some(id);
        let encoded = encode(&packet);
        let mut pending = Vec::new();
        for socket in self.targets(opts) {
            socket.acks().insert(id, AckWaiter::Many(sender.clone()));
            if socket.send_encoded(&encoded).is_ok() {
                pending.push((Arc::downgrade(&socket), id));
            } else {
                socket.acks().remove(id);
            }
        }
        LocalAcks::new(pending.len(), receiver, pending)
    }

    /// The targeted sockets of this server.
    pub fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.targets(opts)
            .into_iter()
            .map(|socket| SocketInfo {
                id: socket.id().to_owned(),
                handshake: socket.handshake(),
                rooms: socket.rooms(),
                data: socket.data(),
            })
            .collect()
    }

    /// Makes the targeted sockets of this server join `rooms`.
    pub fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[String]) {
        for socket in self.targets(opts) {
            self.join(&socket, rooms);
        }
    }

    /// Makes the targeted sockets of this server leave `rooms`.
    pub fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[String]) {
        for socket in self.targets(opts) {
            self.leave(&socket, rooms);
        }
    }

    /// Disconnects the targeted sockets of this server.
    pub fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        for socket in self.targets(opts) {
            socket.disconnect(close);
        }
    }

    /// Hands a server-side event (event name first) to this server's
    /// handlers; `reply` is called by the handler when the sender wants an
    /// ack. Returns false when no handler takes the event.
    pub fn server_side_event(&self, mut event: Payload, reply: Option<ServerAck>) -> bool {
        let Some(ns) = self.get() else { return false };
        if event.args.is_empty() {
            return false;
        }
        let name = match event.args.remove(0) {
            Value::String(name) => name,
            _ => return false,
        };
        let handler = read(&ns.handlers).server_events.get(&name).cloned();
        match handler {
            Some(handler) => {
                handler(event, reply);
                true
            }
            None => false,
        }
    }

    /// Adds a socket to rooms.
    pub(crate) fn join(&self, socket: &Socket, rooms: &[String]) {
        let Some(ns) = self.get() else { return };
        let mut events = Vec::new();
        {
            let mut index = ns.rooms.write().unwrap_or_else(|p| p.into_inner());
            let mut own = socket.room_set();
            for room in rooms {
                if !own.insert(room.clone()) {
                    continue;
                }
                let members = index.entry(room.clone()).or_insert_with(|| {
                    events.push(RoomEvent::Create(room.clone()));
                    HashSet::new()
                });
                members.insert(Arc::clone(socket.id_arc()));
                events.push(RoomEvent::Join {
                    room: room.clone(),
                    sid: socket.id().to_owned(),
                });
            }
        }
        if !events.is_empty() {
            socket.track();
        }
        notify_rooms(&ns, &events);
    }

    /// Removes a socket from rooms.
    pub(crate) fn leave(&self, socket: &Socket, rooms: &[String]) {
        let Some(ns) = self.get() else { return };
        let mut events = Vec::new();
        {
            let mut index = ns.rooms.write().unwrap_or_else(|p| p.into_inner());
            let mut own = socket.room_set();
            for room in rooms {
                if !own.remove(room) {
                    continue;
                }
                if let Some(members) = index.get_mut(room) {
                    members.remove(socket.id());
                    events.push(RoomEvent::Leave {
                        room: room.clone(),
                        sid: socket.id().to_owned(),
                    });
                    if members.is_empty() {
                        index.remove(room);
                        events.push(RoomEvent::Delete(room.clone()));
                    }
                }
            }
        }
        if !events.is_empty() {
            socket.track();
        }
        notify_rooms(&ns, &events);
    }

    /// Removes a socket from the namespace and all its rooms.
    pub(crate) fn remove(&self, socket: &Socket) {
        let rooms: Vec<String> = socket.rooms();
        self.leave(socket, &rooms);
        if let Some(ns) = self.get() {
            ns.sockets
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(socket.id());
        }
    }
}

fn notify_rooms(ns: &NamespaceShared, events: &[RoomEvent]) {
    if events.is_empty() {
        return;
    }
    let mut handlers = read(&ns.handlers).room_events.clone();
    handlers.extend(
        ns.local_room_events
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned(),
    );
    for event in events {
        for handler in &handlers {
            handler(event);
        }
    }
}

/// One broadcast's deliveries to this server's sockets.
///
/// A client whose send buffer is full does not read fast enough. Without
/// connection state recovery the packet is dropped for it (counted by the
/// engine; Node would buffer without bound). With recovery, dropping it
/// would leave a gap the client never learns of: its session is closed
/// instead (after what is queued, as a forced close, which is
/// recoverable), so the client reconnects and recovers every packet after
/// the last one it read, this one included. The sessions are closed once
/// the targets have been walked: closing one removes its socket from the
/// namespace, whose socket table the walk holds.
#[derive(Default)]
struct Delivery {
    queued: usize,
    overflowed: Vec<SocketRef>,
}

impl Delivery {
    /// Queues an encoded packet for one targeted socket (a volatile packet
    /// skips a socket that has anything waiting).
    fn deliver(&mut self, socket: &SocketRef, packet: &Encoded, opts: &BroadcastOptions) {
        if opts.flags.volatile && socket.session().buffered() > 0 {
            return;
        }
        match socket.send_encoded(packet) {
            Ok(()) => self.queued += 1,
            Err(SendError::BufferFull) if socket.pid().is_some() => {
                self.overflowed.push(Arc::clone(socket));
            }
            Err(error) => {
                tracing::debug!(socket = socket.id(), %error, "broadcast not delivered");
            }
        }
    }

    /// Closes the sessions that overflowed; how many sockets got the packet.
    fn finish(self) -> usize {
        for socket in self.overflowed {
            tracing::debug!(
                socket = socket.id(),
                "send buffer full: closing the session so its client recovers the gap"
            );
            socket.session().close();
        }
        crate::stats::DELIVERIES.add(self.queued as u64);
        self.queued
    }
}
