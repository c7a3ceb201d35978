//! What only the Socket.IO integration tests need, on top of
//! `iocluster-testkit` (re-exported here, so that a test's `use support::*`
//! brings both): a real [`Server`] on `127.0.0.1:0` whose main namespace
//! echoes and records every disconnection.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use iocluster_socketio::{DisconnectReason, Server, ServerConfig};
pub use iocluster_testkit::{EventLog, PollingClient, WAIT, WsClient, eventually};
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// A socket's disconnection, as the server's `on_disconnect` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnection {
    /// The socket id.
    pub socket: String,
    /// The Engine.IO session id of its connection.
    pub session: String,
    /// Why it disconnected.
    pub reason: DisconnectReason,
}

/// Every disconnection of the main namespace, with a way to wait for one.
#[derive(Default)]
pub struct Disconnections(EventLog<Disconnection>);

impl Disconnections {
    /// Every disconnection so far.
    pub fn all(&self) -> Vec<Disconnection> {
        self.0.snapshot()
    }

    /// Waits until the socket of Engine.IO session `session` disconnected;
    /// returns why.
    pub async fn reason_of_session(&self, session: &str) -> DisconnectReason {
        let what = format!("the socket of session {session} to disconnect");
        self.0
            .wait_for(WAIT, &what, |seen| {
                seen.iter().find(|d| d.session == session).map(|d| d.reason)
            })
            .await
    }

    /// The disconnections of the sockets of Engine.IO session `session`.
    pub fn of_session(&self, session: &str) -> Vec<Disconnection> {
        self.0.read(|seen| {
            seen.iter()
                .filter(|d| d.session == session)
                .cloned()
                .collect()
        })
    }
}

/// A Socket.IO server on a port of `127.0.0.1`, for the duration of a test.
///
/// Its main namespace acks `echo` with the event's arguments and answers
/// `emit-back` with an `emit-back` event; `/other` exists and does nothing.
pub struct TestServer {
    /// The server under test.
    pub io: Server,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The main namespace's disconnections.
    pub disconnections: Arc<Disconnections>,
}

impl TestServer {
    /// Starts a server with the default options.
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default()).await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: ServerConfig) -> TestServer {
        let io = Server::new(config);
        let disconnections = Arc::new(Disconnections::default());
        let recorder = Arc::clone(&disconnections);
        io.on_connection(move |socket| {
            let recorder = Arc::clone(&recorder);
            socket.on_disconnect(move |socket, reason| {
                recorder.0.push(Disconnection {
                    socket: socket.id().to_owned(),
                    session: socket.session().id().to_string(),
                    reason,
                });
            });
            socket.on("echo", |_socket, args, ack| {
                if let Some(ack) = ack {
                    let _ = ack.send(args);
                }
            });
            socket.on("emit-back", |socket, args, _ack| {
                let _ = socket.emit("emit-back", args);
            });
        });
        io.of("/other");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(iocluster_socketio::engineio::serve(listener, io.router()));
        TestServer {
            io,
            addr,
            disconnections,
        }
    }

    /// Whether the engine still knows session `sid`.
    pub fn has_session(&self, sid: &str) -> bool {
        self.io.engine().session(sid).is_some()
    }

    /// Waits until the engine forgot session `sid`.
    pub async fn wait_until_gone(&self, sid: &str) {
        let engine = self.io.engine().clone();
        eventually(WAIT, &format!("session {sid} to be forgotten"), || {
            engine.session(sid).is_none()
        })
        .await;
    }

    /// A WebSocket client whose Engine.IO session is open (no namespace
    /// joined yet).
    pub async fn websocket(&self) -> WsClient {
        WsClient::open(self.addr)
            .await
            .expect("a WebSocket session opens")
    }

    /// A WebSocket client connected to the main namespace.
    pub async fn websocket_in_main(&self) -> WsClient {
        let mut ws = self.websocket().await;
        ws.join("/").await;
        ws
    }

    /// A polling client connected to the main namespace.
    pub async fn polling_in_main(&self) -> PollingClient {
        let mut client = PollingClient::open(self.addr)
            .await
            .expect("a polling session opens");
        client.join_main().await;
        client
    }
}
