//! The built-in app: a chat page at `/` and a few Socket.IO events on `/`.
//!
//! - `echo(...args)` acks the same arguments back;
//! - `broadcast(payload)` emits `broadcast` with the payload to every client;
//! - `join(room)`, `leave(room)` (acked);
//! - `message(room, text)` emits `message` `{room, text, from, worker}` to the
//!   room, then acks.
//!
//! Across workers, broadcasts reach the clients of the worker that sends them
//! until the cluster adapter connects the workers.
//!
//! With `iocluster --admin-ui`, the Socket.IO Admin UI is served at
//! `/admin/` and every worker's server is instrumented (see
//! [`AdminUi`](crate::AdminUi)).

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use iocluster_cluster::WorkerContext;
use iocluster_socketio::{Payload, Server};
use serde_json::json;

/// The chat page.
const CHAT_PAGE: &str = include_str!("chat.html");

/// Builds the built-in app for one worker.
pub fn build(worker: &WorkerContext) -> Router {
    let io = worker.socketio(worker.socketio_config());
    register_handlers(&io);
    let pid = std::process::id();
    let page = CHAT_PAGE.replace("{{PID}}", &pid.to_string());
    let router = match crate::AdminUi::instrument_worker(worker, &io) {
        Some(admin_ui) => io.router().merge(admin_ui),
        None => io.router(),
    };
    router.route(
        "/",
        get(move || {
            let page = page.clone();
            async move { Html(page) }
        }),
    )
}

/// Registers the built-in events on the main namespace of `io`.
pub fn register_handlers(io: &Server) {
    let pid = std::process::id();
    io.on_connection(move |socket| {
        let _ = socket.emit("welcome", json!({ "id": socket.id(), "worker": pid }));
        socket.on("echo", |_socket, args, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(args);
            }
        });
        socket.on("broadcast", |socket, args, ack| {
            socket.namespace().emit("broadcast", args);
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        });
        socket.on("join", |socket, args, ack| {
            if let Ok(room) = args.arg::<String>(0) {
                socket.join([room]);
            }
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        });
        socket.on("leave", |socket, args, ack| {
            if let Ok(room) = args.arg::<String>(0) {
                socket.leave(&room);
            }
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        });
        socket.on("message", move |socket, args, ack| {
            let (Ok(room), Ok(text)) = (args.arg::<String>(0), args.arg::<String>(1)) else {
                return;
            };
            let message = json!({ "room": room, "text": text, "from": socket.id(), "worker": pid });
            socket
                .namespace()
                .to(room)
                .emit("message", Payload::from(message));
            if let Some(ack) = ack {
                let _ = ack.send(());
            }
        });
    });
}
