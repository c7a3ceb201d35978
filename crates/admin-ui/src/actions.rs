//! What the UI asks of the servers (Node's `registerFeatureHandlers`, the
//! Socket.IO v4 branch) and what it is told when it connects (`config`,
//! then `all_sockets` in development mode).
//!
//! | UI emits | arguments | does |
//! |---|---|---|
//! | `join` | `nsp, room, filter?` | `io.of(nsp).in(filter).socketsJoin(room)` |
//! | `leave` | `nsp, room, filter?` | `io.of(nsp).in(filter).socketsLeave(room)` |
//! | `_disconnect` | `nsp, close, filter?` | `io.of(nsp).in(filter).disconnectSockets(close)` |
//! | `emit` | `nsp, filter?, event, ...args` | `io.of(nsp).in(filter).emit(event, ...args)` |
//!
//! The filter is a room, most often a socket's own (its id). Each goes
//! through the namespace's adapter, so it reaches sockets on every worker
//! and every node. Unlike Node's `io.of(nsp)`, a namespace this server does
//! not have is not created: the action does nothing.

use std::sync::Arc;
use std::time::Duration;

use iocluster_socketio::{BroadcastOperator, Payload, SocketRef};
use serde_json::Value;

use crate::{Mode, Shared, serialize, supported_features};

/// How long `all_sockets` waits for the other servers' sockets.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers each UI that connects to the admin namespace.
pub(crate) fn register(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    shared.admin.clone().on_connection(move |socket| {
        if !shared.options.readonly {
            register_actions(&shared, socket);
        }
        let _ = socket.emit("config", supported_features(&shared.options));
        if shared.options.mode == Mode::Development {
            tokio::spawn(send_all_sockets(Arc::clone(&shared), Arc::clone(socket)));
        }
    });
}

fn register_actions(shared: &Arc<Shared>, socket: &SocketRef) {
    let on = |event: &str, act: fn(&Shared, &Payload)| {
        let shared = Arc::clone(shared);
        socket.on(event, move |_socket, args, _ack| act(&shared, &args));
    };
    on("join", |shared, args| {
        if let Some(target) = target(shared, args, 2)
            && let Ok(room) = args.arg::<String>(1)
        {
            target.sockets_join([room]);
        }
    });
    on("leave", |shared, args| {
        if let Some(target) = target(shared, args, 2)
            && let Ok(room) = args.arg::<String>(1)
        {
            target.sockets_leave([room]);
        }
    });
    on("_disconnect", |shared, args| {
        if let Some(target) = target(shared, args, 2) {
            let close = args.arg::<bool>(1).unwrap_or(false);
            target.disconnect_sockets(close);
        }
    });
    on("emit", |shared, args| {
        let (Some(target), Ok(event)) = (target(shared, args, 1), args.arg::<String>(2)) else {
            return;
        };
        let rest = Payload {
            args: args.args.iter().skip(3).cloned().collect(),
            attachments: args.attachments.clone(),
        };
        target.emit(&event, rest);
    });
}

/// The sockets an action targets: those of namespace `args[0]`, in room
/// `args[filter]` when it is a non-empty string; none when this server has
/// no such namespace.
fn target(shared: &Shared, args: &Payload, filter: usize) -> Option<BroadcastOperator> {
    let name = args.arg::<String>(0).ok()?;
    let namespace = shared
        .io
        .namespaces()
        .into_iter()
        .find(|ns| ns.name() == name)?;
    Some(match args.args.get(filter) {
        Some(Value::String(room)) if !room.is_empty() => namespace.to(room.clone()),
        _ => namespace.broadcast(),
    })
}

/// `all_sockets`: the sockets of every namespace on every server (Node's
/// `fetchAllSockets`). A namespace whose servers did not all answer in time
/// contributes what it got from this server's adapter: nothing (Node's
/// `fetchSockets` rejects, and so does its `all_sockets`).
async fn send_all_sockets(shared: Arc<Shared>, socket: SocketRef) {
    let fetches = shared.io.namespaces().into_iter().map(|namespace| async move {
        let name = namespace.name().to_owned();
        match namespace
            .broadcast()
            .timeout(FETCH_TIMEOUT)
            .fetch_sockets()
            .await
        {
            Ok(sockets) => sockets
                .iter()
                .map(|s| serialize::remote(s, &name))
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(namespace = %name, %error, "admin UI: cannot fetch every socket");
                Vec::new()
            }
        }
    });
    let sockets: Vec<Value> = futures_util::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect();
    if socket.connected() {
        let _ = socket.emit("all_sockets", Value::Array(sockets));
    }
}
