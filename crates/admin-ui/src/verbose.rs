//! Development mode: every socket, room change and event of every namespace
//! (Node's `registerVerboseListeners`), broadcast to the admin namespace of
//! every server, each with the time it happened.
//!
//! | emitted | arguments | when |
//! |---|---|---|
//! | `socket_connected` | `socket, time` | a socket connects (before the namespace's handlers) |
//! | `socket_updated` | `{id, nsp, transport}` | its connection upgraded to WebSocket |
//! | `room_joined` / `room_left` | `nsp, room, id, time` | it joins or leaves a room |
//! | `event_received` / `event_sent` | `nsp, id, [event, ...args], time` | it sends an event / is sent one by `socket.emit` (not the admin namespace's own) |
//! | `socket_disconnected` | `nsp, id, reason, time` | it leaves |

use std::sync::Arc;
use std::time::SystemTime;

use iocluster_socketio::{Namespace, Payload, RoomEvent, Socket, SocketRef};
use serde_json::{Value, json};

use crate::Shared;
use crate::serialize::{self, admin_details, timestamp, with_admin};

pub(crate) fn register(shared: &Arc<Shared>) {
    let admin = shared.admin.clone();
    shared
        .io
        .on_any_connection(move |socket| on_connection(&admin, socket));
    let admin = shared.admin.clone();
    shared
        .io
        .on_any_upgrade(move |socket| on_upgrade(&admin, socket));
    let admin = shared.admin.clone();
    shared.io.on_new_namespace(move |namespace| {
        let admin = admin.clone();
        let name = namespace.name().to_owned();
        namespace.local_handle().on_room_event(move |event| {
            let (kind, room, id) = match event {
                RoomEvent::Join { room, sid } => ("room_joined", room, sid),
                RoomEvent::Leave { room, sid } => ("room_left", room, sid),
                RoomEvent::Create(_) | RoomEvent::Delete(_) => return,
            };
            admin.emit(kind, vec![json!(name), json!(room), json!(id), now()]);
        });
    });
}

fn on_connection(admin: &Namespace, socket: &SocketRef) {
    // In the data, so that `fetch_sockets` carries them from any server.
    if let Some(data) = with_admin(socket.data(), admin_details(socket)) {
        socket.set_data(data);
    }
    admin.emit("socket_connected", vec![serialize::local(socket), now()]);
    let nsp = socket.namespace().name().to_owned();
    if nsp != admin.name() {
        let to = admin.clone();
        socket.on_any(move |socket, event, args| {
            to.emit("event_received", event_args(socket, event, args));
        });
        let to = admin.clone();
        socket.on_any_outgoing(move |socket, event, args| {
            to.emit("event_sent", event_args(socket, event, args));
        });
    }
    let to = admin.clone();
    socket.on_disconnect(move |socket, reason| {
        to.emit(
            "socket_disconnected",
            vec![
                json!(socket.namespace().name()),
                json!(socket.id()),
                json!(reason.as_str()),
                now(),
            ],
        );
    });
}

/// Node's `socket.conn.on("upgrade")` listener: the data's `_admin` follows
/// the transport, and the UI is told.
fn on_upgrade(admin: &Namespace, socket: &SocketRef) {
    let details = admin_details(socket);
    if let Some(data) = with_admin(socket.data(), details.clone()) {
        socket.set_data(data);
    }
    admin.emit(
        "socket_updated",
        json!({
            "id": socket.id(),
            "nsp": socket.namespace().name(),
            "transport": details["transport"],
        }),
    );
}

/// `nsp, id, [event, ...args], time`, binary arguments kept.
fn event_args(socket: &Socket, event: &str, args: &Payload) -> Payload {
    let mut list = Vec::with_capacity(args.args.len() + 1);
    list.push(json!(event));
    list.extend(args.args.iter().cloned());
    Payload {
        args: vec![
            json!(socket.namespace().name()),
            json!(socket.id()),
            Value::Array(list),
            now(),
        ],
        attachments: args.attachments.clone(),
    }
}

fn now() -> Value {
    Value::String(timestamp(SystemTime::now()))
}
