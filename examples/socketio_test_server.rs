//! The server the Socket.IO end-to-end tests (`tests/js/test/socketio.test.js`)
//! talk to. It doubles as a tour of the API: every handler is a few lines.
//!
//! Listens on `127.0.0.1:$PORT` (default 3000) and prints
//! `listening on http://127.0.0.1:PORT` once bound. Options from the
//! environment: `MAX_PAYLOAD` (bytes, default 2,000,000), `PING_INTERVAL` and
//! `PING_TIMEOUT` (ms, default 25,000 and 20,000). Connection state recovery
//! is on (sockets are kept 60 s after an unexpected disconnection), so every
//! event the server emits carries its offset as the last argument, as in
//! Node.
//!
//! Namespaces:
//! - `/`: the events below.
//! - `/custom`: emits `auth` with the handshake's auth on connection, then
//!   the same events as `/`.
//! - `/private`: refused with `not authorized` and data `{"code":42}` unless
//!   `auth.token` is `"secret"`; then the same events as `/`.
//! - `/dynamic-<digits>`: created on demand; emits `hello` with its name on
//!   connection, then the same events as `/`. Tests use a fresh one to get a
//!   namespace of their own.
//!
//! Events every namespace handles (`ack` is the client's callback; targets
//! are sockets of the sender's namespace):
//! - `echo(...args, ack)`: acks `args` (binaries included, byte-identical).
//! - `emit-back(...args)`: emits `emit-back` with `args` to the sender.
//! - `join(room, ack)`, `leave(room, ack)`: ack the sender's rooms, sorted.
//! - `to-room(room, ...args)`: emits `room-message` with `args` to `room`,
//!   the sender excluded.
//! - `except-room(room, ...args)`: emits `except-message` with `args` to
//!   every socket not in `room` (the sender too, when it is not in it).
//! - `broadcast(...args)`: emits `broadcast` with `args` to every socket,
//!   the sender included.
//! - `broadcast-with-ack(timeoutMs, ack)`: emits `ping-all` to every socket
//!   asking for acks and acks `{replies, complete, expected}`, `replies`
//!   holding each client's first ack argument.
//! - `ask-client(ack)`: emits `question` with `"what?"` to the sender asking
//!   for an ack within 2 s; acks the client's answer, or `{error}`.
//! - `fetch-sockets(ack)`: acks `[{id, rooms, data}]`, sorted by id.
//! - `set-data(value, ack)`: sets the sender's `socket.data`; acks.
//! - `disconnect-me(close)`: the server disconnects the sender; with
//!   `close`, its whole connection.
//! - `server-disconnect-others(ack?)`: the server disconnects every other
//!   socket.
//! - `last-disconnect-reasons(ack)`: acks the latest disconnections
//!   `[{id, nsp, reason}]`; `last-disconnect-reasons(id, ack)` first waits
//!   (up to 5 s) until socket `id` has disconnected and acks its reasons.

use std::time::Duration;

use iocluster_socketio::engineio::EngineConfig;
use iocluster_socketio::{
    AckSender, ConnectError, DisconnectReason, Payload, RecoveryConfig, Server, ServerConfig,
    SocketRef,
};
use serde_json::{Value, json};
use tokio::sync::watch;

/// How long `ask-client` waits for the client's answer.
const ASK_CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `last-disconnect-reasons(id, ack)` waits for the disconnection.
const DISCONNECT_WAIT: Duration = Duration::from_secs(5);
/// How many disconnections the log keeps (the oldest go first).
const DISCONNECT_LOG_SIZE: usize = 1_000;

/// Runs the server; on failure, prints one sentence and exits with 1.
#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("socketio_test_server: {message}");
        std::process::exit(1);
    }
}

/// Builds the server from the environment and serves it until it fails.
async fn run() -> Result<(), String> {
    let port = env_number("PORT", 3000)?;
    let engine = EngineConfig::default()
        .max_payload(env_number("MAX_PAYLOAD", 2_000_000)? as usize)
        .ping_interval(Duration::from_millis(env_number("PING_INTERVAL", 25_000)?))
        .ping_timeout(Duration::from_millis(env_number("PING_TIMEOUT", 20_000)?));
    let recovery = RecoveryConfig {
        max_disconnection_duration: Duration::from_secs(60),
        ..RecoveryConfig::default()
    };
    let io = Server::new(ServerConfig::default().engine(engine).recovery(recovery));
    let log = DisconnectLog::default();

    let main_log = log.clone();
    io.on_connection(move |socket| register_events(socket, &main_log));

    let custom_log = log.clone();
    io.of("/custom").on_connection(move |socket| {
        let _ = socket.emit("auth", socket.auth().clone());
        register_events(socket, &custom_log);
    });

    let private = io.of("/private");
    private.use_middleware(|socket| async move {
        match socket.auth().get("token") {
            Some(Value::String(token)) if token == "secret" => Ok(()),
            _ => Err(ConnectError::new("not authorized").with_data(json!({ "code": 42 }))),
        }
    });
    let private_log = log.clone();
    private.on_connection(move |socket| register_events(socket, &private_log));

    let dynamic = io.of_dynamic(|name, _auth| is_dynamic_name(name));
    let dynamic_log = log;
    dynamic.on_connection(move |socket| {
        let _ = socket.emit("hello", socket.namespace().name());
        register_events(socket, &dynamic_log);
    });

    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{port}: {error}"))?;
    let addr = listener
        .local_addr()
        .map_err(|error| format!("no local address: {error}"))?;
    println!("listening on http://{addr}");
    // `io` lives until serving ends: the router holds the server weakly.
    iocluster_socketio::engineio::serve(listener, io.router())
        .await
        .map_err(|error| format!("serving failed: {error}"))
}

/// Environment variable `name` as a number, or `default` when unset.
fn env_number(name: &str, default: u64) -> Result<u64, String> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a non-negative integer")),
        Err(_) => Ok(default),
    }
}

/// `/dynamic-` followed by one digit or more.
fn is_dynamic_name(name: &str) -> bool {
    name.strip_prefix("/dynamic-")
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The events every namespace handles (see the module documentation).
fn register_events(socket: &SocketRef, log: &DisconnectLog) {
    let on_disconnect_log = log.clone();
    socket.on_disconnect(move |socket, reason| on_disconnect_log.record(socket, reason));

    socket.on("echo", |_socket, args, ack| reply(ack, args));

    socket.on("emit-back", |socket, args, _ack| {
        let _ = socket.emit("emit-back", args);
    });

    socket.on("join", |socket, args, ack| {
        if let Ok(room) = args.arg::<String>(0) {
            socket.join([room]);
        }
        reply(ack, sorted_rooms(socket));
    });

    socket.on("leave", |socket, args, ack| {
        if let Ok(room) = args.arg::<String>(0) {
            socket.leave(&room);
        }
        reply(ack, sorted_rooms(socket));
    });

    socket.on("to-room", |socket, args, _ack| {
        if let Some((room, rest)) = split_room(args) {
            socket.to(room).emit("room-message", rest);
        }
    });

    socket.on("except-room", |socket, args, _ack| {
        if let Some((room, rest)) = split_room(args) {
            socket.namespace().except(room).emit("except-message", rest);
        }
    });

    socket.on("broadcast", |socket, args, _ack| {
        socket.namespace().emit("broadcast", args);
    });

    socket.on_async("broadcast-with-ack", |socket, args, ack| async move {
        let timeout = Duration::from_millis(args.arg::<u64>(0).unwrap_or(1_000));
        let replies = socket
            .namespace()
            .broadcast()
            .timeout(timeout)
            .emit_with_ack("ping-all", ())
            .await;
        let firsts: Vec<Value> = replies
            .replies
            .iter()
            .map(|reply| reply.args.first().cloned().unwrap_or(Value::Null))
            .collect();
        reply(
            ack,
            json!({
                "replies": firsts,
                "complete": replies.complete,
                "expected": replies.expected,
            }),
        );
    });

    socket.on_async("ask-client", |socket, _args, ack| async move {
        match socket
            .emit_with_ack("question", "what?", ASK_CLIENT_TIMEOUT)
            .await
        {
            Ok(answer) => reply(ack, answer),
            Err(error) => reply(ack, json!({ "error": error.to_string() })),
        }
    });

    socket.on_async("fetch-sockets", |socket, _args, ack| async move {
        let sockets = match socket.namespace().broadcast().fetch_sockets().await {
            Ok(sockets) => sockets,
            Err(error) => return reply(ack, json!({ "error": error.to_string() })),
        };
        let mut found: Vec<Value> = sockets
            .iter()
            .map(|remote| {
                let mut rooms = remote.rooms().to_vec();
                rooms.sort();
                json!({ "id": remote.id(), "rooms": rooms, "data": remote.data() })
            })
            .collect();
        found.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        reply(ack, Value::Array(found));
    });

    socket.on("set-data", |socket, args, ack| {
        socket.set_data(args.args.first().cloned().unwrap_or(Value::Null));
        reply(ack, ());
    });

    socket.on("disconnect-me", |socket, args, _ack| {
        socket.disconnect(args.arg::<bool>(0).unwrap_or(false));
    });

    socket.on("server-disconnect-others", |socket, _args, ack| {
        socket.broadcast().disconnect_sockets(false);
        reply(ack, ());
    });

    let query_log = log.clone();
    socket.on_async("last-disconnect-reasons", move |_socket, args, ack| {
        let log = query_log.clone();
        async move {
            match args.arg::<String>(0) {
                Ok(id) => match log.reasons_of(&id, DISCONNECT_WAIT).await {
                    Some(reasons) => reply(ack, json!(reasons)),
                    None => reply(ack, json!({ "error": format!("{id} did not disconnect") })),
                },
                Err(_) => reply(ack, Value::Array(log.latest())),
            }
        }
    });
}

/// Replies through `ack` when the client asked for one.
fn reply(ack: Option<AckSender>, payload: impl Into<Payload>) {
    if let Some(ack) = ack {
        let _ = ack.send(payload);
    }
}

/// The socket's rooms, sorted, as a single JSON argument.
fn sorted_rooms(socket: &SocketRef) -> Value {
    let mut rooms = socket.rooms();
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

/// The disconnections seen so far, newest last; a watch channel so that a
/// query can wait for the one it expects instead of racing it.
#[derive(Clone)]
struct DisconnectLog(watch::Sender<Vec<Value>>);

impl Default for DisconnectLog {
    fn default() -> Self {
        DisconnectLog(watch::Sender::new(Vec::new()))
    }
}

impl DisconnectLog {
    fn record(&self, socket: &SocketRef, reason: DisconnectReason) {
        let entry = json!({
            "id": socket.id(),
            "nsp": socket.namespace().name(),
            "reason": reason.as_str(),
        });
        self.0.send_modify(|log| {
            log.push(entry);
            if log.len() > DISCONNECT_LOG_SIZE {
                log.remove(0);
            }
        });
    }

    fn latest(&self) -> Vec<Value> {
        self.0.borrow().clone()
    }

    /// The reasons socket `id` disconnected for, once it has; `None` when it
    /// has not within `timeout`.
    async fn reasons_of(&self, id: &str, timeout: Duration) -> Option<Vec<String>> {
        let mut receiver = self.0.subscribe();
        let is_id = |entry: &Value| entry["id"] == id;
        let log = tokio::time::timeout(timeout, receiver.wait_for(|log| log.iter().any(is_id)))
            .await
            .ok()?
            .ok()?;
        Some(
            log.iter()
                .filter(|entry| is_id(entry))
                .filter_map(|entry| entry["reason"].as_str().map(str::to_owned))
                .collect(),
        )
    }
}
