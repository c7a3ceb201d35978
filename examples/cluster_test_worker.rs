//! The worker program of the cluster adapter's end-to-end tests
//! (`tests/js/test/cluster-adapter.test.js`) and of the fan-out benchmark
//! (`tests/js/bench/fanout.mjs`): every event below is a few lines over the
//! server-wide API, so that the tests exercise the cluster adapter through
//! the master. Run it under a master:
//!
//! ```text
//! cargo build --examples --bins
//! target/debug/iocluster --port 0 --workers 3 -- target/debug/examples/cluster_test_worker
//! ```
//!
//! Connection state recovery is on, so every event a worker emits (even to
//! a single socket) carries its recovery offset as the last argument, as in
//! Node.
//!
//! Namespaces: `/`, and `/dynamic-<anything>`, created on a worker when a
//! client first connects to it there (so it may exist on one worker only).
//! On connection a socket gets `welcome {id, worker}` (`worker`: this
//! process's pid). Events (each acks when the client asks for an ack;
//! targets are sockets of the sender's namespace on every worker):
//! - `echo(...args)`: acks `args`.
//! - `join(room)`, `leave(room)`: ack the sender's rooms, sorted.
//! - `set-data(value)`: sets the sender's `socket.data`.
//! - `broadcast(...args)`: emits `broadcast` with `args` to every socket.
//! - `to-room(room, ...args)`: emits `room-message` with `args` to `room`.
//! - `except-room(room, ...args)`: emits `except-message` with `args` to
//!   every socket not in `room`.
//! - `marker(n)`: emits `marker` with `n` to every socket.
//! - `broadcast-with-ack(timeoutMs)`: emits `question` to every socket
//!   asking for an ack and acks `{count, complete, expected, replies}`,
//!   `replies` holding each client's first ack argument.
//! - `fetch-sockets(timeoutMs?)`: acks `[{id, rooms, data}]`, sorted by id,
//!   rooms sorted, or `{error}`; with a timeout, waits at most that long.
//! - `remote-join(id, room)`, `remote-leave(id, room)`, `remote-disconnect(id)`:
//!   find socket `id` wherever it lives (`fetch_sockets`) and act on it
//!   through its `RemoteSocket`; ack `{found}`.
//! - `server-side-emit(timeoutMs)`: emits server event `who` to the other
//!   workers (each replies with its pid; `/` only) and acks `{replies}`, or
//!   `{error}`.
//! - `server-count`: acks the number of servers of the namespace.

use std::time::Duration;

use iocluster::Fleet;
use iocluster::cluster::ClusterError;
use iocluster::socketio::{AckSender, Payload, RecoveryConfig, RemoteSocket, SocketRef};
use serde_json::{Value, json};

/// How long requests to other workers wait when the client names no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> Result<(), ClusterError> {
    Fleet::Local.cluster().build().run(|worker| {
        let io = worker.socketio(worker.socketio_config().recovery(RecoveryConfig::default()));
        let pid = std::process::id();
        io.of("/").on_server_event("who", move |_event, reply| {
            if let Some(reply) = reply {
                reply(Payload::from(json!(pid)));
            }
        });
        let welcome = move |socket: &SocketRef| {
            let _ = socket.emit("welcome", json!({ "id": socket.id(), "worker": pid }));
            register_events(socket);
        };
        io.on_connection(welcome);
        io.of_dynamic(|name, _auth| name.starts_with("/dynamic-"))
            .on_connection(welcome);
        io.router()
    })
}

/// The events of the module documentation.
fn register_events(socket: &SocketRef) {
    socket.on("echo", |_socket, args, ack| reply(ack, args));

    socket.on("join", |socket, args, ack| {
        if let Ok(room) = args.arg::<String>(0) {
            socket.join([room]);
        }
        reply(ack, sorted_rooms(socket.rooms()));
    });

    socket.on("leave", |socket, args, ack| {
        if let Ok(room) = args.arg::<String>(0) {
            socket.leave(&room);
        }
        reply(ack, sorted_rooms(socket.rooms()));
    });

    socket.on("set-data", |socket, args, ack| {
        socket.set_data(args.args.first().cloned().unwrap_or(Value::Null));
        reply(ack, ());
    });

    socket.on("broadcast", |socket, args, ack| {
        socket.namespace().emit("broadcast", args);
        reply(ack, ());
    });

    socket.on("to-room", |socket, args, ack| {
        if let Some((room, rest)) = split_room(args) {
            socket.namespace().to(room).emit("room-message", rest);
        }
        reply(ack, ());
    });

    socket.on("except-room", |socket, args, ack| {
        if let Some((room, rest)) = split_room(args) {
            socket.namespace().except(room).emit("except-message", rest);
        }
        reply(ack, ());
    });

    socket.on("marker", |socket, args, ack| {
        socket.namespace().emit("marker", args);
        reply(ack, ());
    });

    socket.on_async("broadcast-with-ack", |socket, args, ack| async move {
        let answers = socket
            .namespace()
            .broadcast()
            .timeout(timeout_arg(&args, 0))
            .emit_with_ack("question", ())
            .await;
        let replies: Vec<Value> = answers
            .replies
            .iter()
            .map(|reply| reply.args.first().cloned().unwrap_or(Value::Null))
            .collect();
        reply(
            ack,
            json!({
                "count": replies.len(),
                "complete": answers.complete,
                "expected": answers.expected,
                "replies": replies,
            }),
        );
    });

    socket.on_async("fetch-sockets", |socket, args, ack| async move {
        let mut targets = socket.namespace().broadcast();
        if let Ok(timeout) = args.arg::<u64>(0) {
            targets = targets.timeout(Duration::from_millis(timeout));
        }
        let sockets = match targets.fetch_sockets().await {
            Ok(sockets) => sockets,
            Err(error) => return reply(ack, json!({ "error": error.to_string() })),
        };
        let mut found: Vec<Value> = sockets
            .iter()
            .map(|remote| {
                json!({
                    "id": remote.id(),
                    "rooms": sorted_rooms(remote.rooms().to_vec()),
                    "data": remote.data(),
                })
            })
            .collect();
        found.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        reply(ack, Value::Array(found));
    });

    socket.on_async("remote-join", |socket, args, ack| async move {
        let Ok(room) = args.arg::<String>(1) else {
            return reply(ack, json!({ "error": "remote-join(id, room)" }));
        };
        on_remote_socket(&socket, &args, ack, |remote| remote.join([room.clone()])).await;
    });

    socket.on_async("remote-leave", |socket, args, ack| async move {
        let Ok(room) = args.arg::<String>(1) else {
            return reply(ack, json!({ "error": "remote-leave(id, room)" }));
        };
        on_remote_socket(&socket, &args, ack, |remote| remote.leave([room.clone()])).await;
    });

    socket.on_async("remote-disconnect", |socket, args, ack| async move {
        on_remote_socket(&socket, &args, ack, |remote| remote.disconnect(false)).await;
    });

    socket.on_async("server-side-emit", |socket, args, ack| async move {
        let answers = socket
            .namespace()
            .server_side_emit_with_ack("who", (), timeout_arg(&args, 0))
            .await;
        match answers {
            Ok(answers) => {
                let replies: Vec<Value> = answers
                    .iter()
                    .map(|answer| answer.args.first().cloned().unwrap_or(Value::Null))
                    .collect();
                reply(ack, json!({ "replies": replies }));
            }
            Err(error) => reply(ack, json!({ "error": error.to_string() })),
        }
    });

    socket.on_async("server-count", |socket, _args, ack| async move {
        reply(ack, json!(socket.namespace().server_count().await));
    });
}

/// Finds the socket whose id is argument 0 on whichever worker holds it,
/// applies `act` to it, and acks `{found}` (how many sockets matched).
async fn on_remote_socket(
    socket: &SocketRef,
    args: &Payload,
    ack: Option<AckSender>,
    act: impl Fn(&RemoteSocket),
) {
    let Ok(id) = args.arg::<String>(0) else {
        return reply(ack, json!({ "error": "the first argument is a socket id" }));
    };
    match socket.namespace().to(id).fetch_sockets().await {
        Ok(found) => {
            found.iter().for_each(act);
            reply(ack, json!({ "found": found.len() }));
        }
        Err(error) => reply(ack, json!({ "error": error.to_string() })),
    }
}

/// Replies through `ack` when the client asked for one.
fn reply(ack: Option<AckSender>, payload: impl Into<Payload>) {
    if let Some(ack) = ack {
        let _ = ack.send(payload);
    }
}

/// Argument `index` as a timeout in milliseconds.
fn timeout_arg(args: &Payload, index: usize) -> Duration {
    args.arg::<u64>(index)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Rooms, sorted, as a single JSON argument.
fn sorted_rooms(mut rooms: Vec<String>) -> Value {
    rooms.sort();
    json!(rooms)
}

/// Splits `room, ...args`; the attachments stay with the rest, whose
/// placeholders still number them.
fn split_room(mut args: Payload) -> Option<(String, Payload)> {
    let room = args.arg::<String>(0).ok()?;
    args.args.remove(0);
    Some((room, args))
}
