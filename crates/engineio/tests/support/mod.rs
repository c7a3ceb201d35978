//! What only the engine's integration tests need, on top of
//! `iocluster-testkit` (re-exported here, so that a test's `use support::*`
//! brings both): a real engine listening on `127.0.0.1:0`, a handler that
//! records what it is told, connections handed over with bytes already
//! read, and hand-made WebSocket frames.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use iocluster_engineio::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
pub use iocluster_testkit::{
    EventLog, HttpConnection, Response, WAIT, WsConnection, WsResponse, eventually, http_request,
    open_packet, within,
};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite;

/// Asserts that `sid` looks like a default session id: 20 URL-safe
/// characters.
pub fn assert_default_sid(sid: &str) {
    assert_eq!(sid.len(), 20, "sid {sid:?}");
    assert!(
        sid.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "sid {sid:?} is not URL-safe"
    );
}

// ---------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------

/// Something the engine told the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on_open(sid)`.
    Open(String),
    /// `on_message(sid, message)`.
    Message(String, Message),
    /// `on_upgrade(sid)`.
    Upgrade(String),
    /// `on_close(sid, reason)`.
    Close(String, CloseReason),
}

/// A handler that records every event and, when `echo` is on, sends each
/// message back to its session.
pub struct Recorder {
    echo: bool,
    events: EventLog<Event>,
}

impl Recorder {
    fn new(echo: bool) -> Self {
        Recorder {
            echo,
            events: EventLog::default(),
        }
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.snapshot()
    }

    /// Waits until `find` returns something for the events recorded so far.
    pub async fn wait_for<T>(&self, what: &str, find: impl FnMut(&[Event]) -> Option<T>) -> T {
        self.events.wait_for(WAIT, what, find).await
    }

    /// Waits for the session's `on_close` and returns its reason.
    pub async fn close_reason(&self, sid: &str) -> CloseReason {
        self.wait_for(&format!("on_close of {sid}"), |events| {
            events.iter().find_map(|e| match e {
                Event::Close(s, reason) if s == sid => Some(*reason),
                _ => None,
            })
        })
        .await
    }

    /// The reasons of every `on_close` of the session so far.
    pub fn close_reasons(&self, sid: &str) -> Vec<CloseReason> {
        self.events.read(|events| {
            events
                .iter()
                .filter_map(|e| match e {
                    Event::Close(s, reason) if s == sid => Some(*reason),
                    _ => None,
                })
                .collect()
        })
    }

    /// Waits until the session has received `count` messages; returns them
    /// all, in order.
    pub async fn messages(&self, sid: &str, count: usize) -> Vec<Message> {
        self.wait_for(&format!("{count} messages from {sid}"), |events| {
            let messages: Vec<Message> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Message(s, m) if s == sid => Some(m.clone()),
                    _ => None,
                })
                .collect();
            (messages.len() >= count).then_some(messages)
        })
        .await
    }

    /// Waits for the session's `on_upgrade`.
    pub async fn upgraded(&self, sid: &str) {
        self.happened(
            &format!("on_upgrade of {sid}"),
            Event::Upgrade(sid.to_owned()),
        )
        .await
    }

    /// Waits for the session's `on_open`.
    pub async fn opened(&self, sid: &str) {
        self.happened(&format!("on_open of {sid}"), Event::Open(sid.to_owned()))
            .await
    }

    /// Waits until `event` was recorded.
    async fn happened(&self, what: &str, event: Event) {
        self.wait_for(what, |events| events.contains(&event).then_some(()))
            .await
    }
}

impl EngineHandler for Recorder {
    fn on_open(&self, session: &Arc<Session>) {
        self.events.push(Event::Open(session.id().to_string()));
    }

    fn on_message(&self, session: &Arc<Session>, message: Message) {
        self.events
            .push(Event::Message(session.id().to_string(), message.clone()));
        if self.echo {
            let _ = session.send(message);
        }
    }

    fn on_close(&self, session: &Arc<Session>, reason: CloseReason) {
        self.events
            .push(Event::Close(session.id().to_string(), reason));
    }

    fn on_upgrade(&self, session: &Arc<Session>) {
        self.events.push(Event::Upgrade(session.id().to_string()));
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// An engine served on a port of `127.0.0.1`, for the duration of a test.
pub struct TestServer {
    /// The engine under test.
    pub engine: Engine,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What its handler was told.
    pub events: Arc<Recorder>,
}

/// The query of a polling request for a session.
pub fn polling(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

impl TestServer {
    /// Starts an engine whose handler echoes every message.
    pub async fn start(config: EngineConfig) -> TestServer {
        TestServer::start_with(config, true).await
    }

    /// Starts an engine whose handler only records (sends nothing itself).
    pub async fn start_silent(config: EngineConfig) -> TestServer {
        TestServer::start_with(config, false).await
    }

    async fn start_with(config: EngineConfig, echo: bool) -> TestServer {
        let events = Arc::new(Recorder::new(echo));
        let engine = Engine::with_handler(config, events.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(iocluster_engineio::serve(listener, engine.router()));
        TestServer {
            engine,
            addr,
            events,
        }
    }

    /// The request target for a query: `/socket.io/?{query}`.
    pub fn target(&self, query: &str) -> String {
        format!("{}?{query}", self.engine.config().path)
    }

    /// A new connection to the server.
    pub async fn connect(&self) -> HttpConnection {
        HttpConnection::open(self.addr).await.expect("connect")
    }

    /// Sends one request on a new connection and reads the response.
    pub async fn request(
        &self,
        method: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut conn = self.connect().await;
        conn.write(&http_request(method, &self.target(query), headers, body))
            .await;
        conn.read_response().await
    }

    /// `GET /socket.io/?{query}`.
    pub async fn get(&self, query: &str) -> Response {
        self.request("GET", query, &[], b"").await
    }

    /// `POST /socket.io/?{query}` with `body`.
    pub async fn post(&self, query: &str, body: impl AsRef<[u8]>) -> Response {
        self.request("POST", query, &[], body.as_ref()).await
    }

    /// Opens a polling session; returns its sid and open packet.
    pub async fn handshake(&self) -> (String, Value) {
        let response = self.get("EIO=4&transport=polling").await;
        assert_eq!(response.status, 200, "handshake: {}", response.text());
        let open = open_packet(response.text());
        let sid = open["sid"].as_str().expect("sid in open packet").to_owned();
        (sid, open)
    }

    /// Opens a polling session and returns its sid.
    pub async fn open_polling(&self) -> String {
        self.handshake().await.0
    }

    /// A polling GET for the session.
    pub async fn poll(&self, sid: &str) -> Response {
        self.get(&polling(sid)).await
    }

    /// A polling GET that must succeed; returns its payload.
    pub async fn poll_payload(&self, sid: &str) -> String {
        let response = self.poll(sid).await;
        assert_eq!(response.status, 200, "poll: {}", response.text());
        response.text().to_owned()
    }

    /// A polling POST of `payload` that must be answered `ok`.
    pub async fn send_payload(&self, sid: &str, payload: impl AsRef<[u8]>) {
        let response = self.post(&polling(sid), payload).await;
        assert_eq!(response.status, 200, "post: {}", response.text());
        assert_eq!(response.text(), "ok");
    }

    /// Writes a polling GET and waits until the server holds it pending;
    /// read its answer with [`HttpConnection::read_response`].
    pub async fn begin_poll(&self, sid: &str) -> HttpConnection {
        let mut conn = self.connect().await;
        conn.write(&http_request("GET", &self.target(&polling(sid)), &[], b""))
            .await;
        self.wait_until_poll_pending(sid).await;
        conn
    }

    /// Waits until the session holds a GET. No event announces it, so this
    /// reads the session's debug form, which shows its state.
    pub async fn wait_until_poll_pending(&self, sid: &str) {
        self.wait_until_state(sid, "poll_pending: true").await;
    }

    /// Waits until the session's debug form contains `needle`.
    pub async fn wait_until_state(&self, sid: &str, needle: &str) {
        let session = self.session(sid);
        eventually(WAIT, &format!("{sid} to show {needle}"), || {
            format!("{session:?}").contains(needle)
        })
        .await;
    }

    /// The live session `sid`; fails the test when there is none.
    pub fn session(&self, sid: &str) -> Arc<Session> {
        self.engine
            .session(sid)
            .unwrap_or_else(|| panic!("no live session {sid}"))
    }

    /// Waits until the engine no longer knows the session.
    pub async fn wait_until_gone(&self, sid: &str) {
        let engine = self.engine.clone();
        eventually(WAIT, &format!("{sid} to leave the session table"), || {
            engine.session(sid).is_none()
        })
        .await;
    }

    /// A WebSocket handshake for `query`, over a fresh TCP connection.
    pub async fn ws_connect(
        &self,
        query: &str,
    ) -> Result<(WsConnection, WsResponse), tungstenite::Error> {
        WsConnection::connect(self.addr, &self.target(query)).await
    }

    /// Opens a session directly over WebSocket; returns the client, its sid
    /// and the open packet.
    pub async fn open_websocket(&self) -> (WsConnection, String, Value) {
        let (mut ws, _) = self
            .ws_connect("EIO=4&transport=websocket")
            .await
            .expect("websocket handshake");
        let open = open_packet(&ws.recv_text().await);
        let sid = open["sid"].as_str().expect("sid").to_owned();
        (ws, sid, open)
    }

    /// Upgrades polling session `sid` to WebSocket (`2probe`, `3probe`,
    /// `5`) while no GET is pending; returns once `on_upgrade` ran.
    pub async fn upgrade(&self, sid: &str) -> WsConnection {
        let (mut ws, _) = self
            .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
            .await
            .expect("websocket handshake for the upgrade");
        ws.send_text("2probe").await;
        assert_eq!(ws.recv_text().await, "3probe");
        ws.send_text("5").await;
        self.events.upgraded(sid).await;
        ws
    }
}

// ---------------------------------------------------------------------------
// Connections handed over with bytes already read
// ---------------------------------------------------------------------------

/// Accepts one connection on `listener`, reads exactly its first `k` bytes
/// and serves the rest with
/// [`serve_connection`](iocluster_engineio::serve_connection), as the cluster
/// master does when it hands a socket to a worker.
pub async fn hand_over(listener: &TcpListener, router: axum::Router, k: usize) {
    let (mut stream, _) = within(WAIT, "accept", listener.accept())
        .await
        .expect("accept");
    let mut prefix = vec![0u8; k];
    within(WAIT, "the first bytes", stream.read_exact(&mut prefix))
        .await
        .expect("read the first bytes");
    tokio::spawn(iocluster_engineio::serve_connection(
        stream,
        Bytes::from(prefix),
        router,
        iocluster_engineio::ConnectionLimits::default(),
    ));
}

// ---------------------------------------------------------------------------
// Hand-made WebSocket
// ---------------------------------------------------------------------------

/// The headers of a WebSocket handshake (RFC 6455's sample key).
pub const WS_UPGRADE_HEADERS: &[(&str, &str)] = &[
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
];

/// The `Sec-WebSocket-Accept` for [`WS_UPGRADE_HEADERS`]'s key.
pub const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A masked client WebSocket frame (FIN set) with opcode `opcode`
/// (1 text, 2 binary, 8 close).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
