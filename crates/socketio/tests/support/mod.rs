//! Helpers shared by the Socket.IO integration tests: a real [`Server`] on
//! `127.0.0.1:0` whose main namespace echoes and records every
//! disconnection, a raw WebSocket client and a raw HTTP long-polling client
//! that send exact Engine.IO / Socket.IO text, and waits that always end.
//!
//! Every wait is bounded by [`STEP`]; a test that would hang fails instead,
//! naming what it was waiting for.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use iocluster_socketio::{DisconnectReason, Server, ServerConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single wait may take before the test fails.
pub const STEP: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test when it takes longer than [`STEP`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(STEP, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {STEP:?} waiting for {what}"),
    }
}

/// Polls `condition` every 10 ms until it holds, failing the test after
/// [`STEP`]. For state that no event announces (the engine's session table).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {STEP:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

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
pub struct Disconnections {
    seen: Mutex<Vec<Disconnection>>,
    changed: Notify,
}

impl Disconnections {
    fn lock(&self) -> MutexGuard<'_, Vec<Disconnection>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, disconnection: Disconnection) {
        self.lock().push(disconnection);
        self.changed.notify_waiters();
    }

    /// Every disconnection so far.
    pub fn all(&self) -> Vec<Disconnection> {
        self.lock().clone()
    }

    /// Waits until the socket of Engine.IO session `session` disconnected;
    /// returns why.
    pub async fn reason_of_session(&self, session: &str) -> DisconnectReason {
        within(
            &format!("the socket of session {session} to disconnect"),
            async {
                loop {
                    let changed = self.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    let found = self
                        .lock()
                        .iter()
                        .find(|d| d.session == session)
                        .map(|d| d.reason);
                    if let Some(reason) = found {
                        return reason;
                    }
                    changed.await;
                }
            },
        )
        .await
    }

    /// The disconnections of the sockets of Engine.IO session `session`.
    pub fn of_session(&self, session: &str) -> Vec<Disconnection> {
        self.lock()
            .iter()
            .filter(|d| d.session == session)
            .cloned()
            .collect()
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
                recorder.record(Disconnection {
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
        eventually(&format!("session {sid} to be forgotten"), || {
            engine.session(sid).is_none()
        })
        .await;
    }

    /// A WebSocket client whose Engine.IO session is open (no namespace
    /// joined yet).
    pub async fn websocket(&self) -> WsClient {
        WsClient::open(self.addr).await
    }

    /// A WebSocket client connected to the main namespace.
    pub async fn websocket_in_main(&self) -> WsClient {
        let mut ws = self.websocket().await;
        ws.join("/").await;
        ws
    }

    /// A polling client connected to the main namespace.
    pub async fn polling_in_main(&self) -> PollingClient {
        let mut client = PollingClient::open(self.addr).await;
        client.join_main().await;
        client
    }
}

/// Parses an Engine.IO open packet (`0{...}`) into its JSON.
pub fn open_packet(packet: &str) -> Value {
    let json = packet
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {packet:?}"));
    serde_json::from_str(json).expect("open packet JSON")
}

/// Parses a Socket.IO CONNECT answer for namespace `nsp` (`40{...}` or
/// `40/nsp,{...}`, after the Engine.IO `4`) into its JSON.
pub fn connect_answer(nsp: &str, packet: &str) -> Value {
    let prefix = if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    };
    let json = packet
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("not a CONNECT to {nsp}: {packet:?}"));
    serde_json::from_str(json).expect("CONNECT JSON")
}

/// The Engine.IO + Socket.IO text of a CONNECT to `nsp`.
pub fn connect_packet(nsp: &str) -> String {
    if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    }
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

/// How a WebSocket connection ended, and the text frames that came before.
#[derive(Debug)]
pub struct WsEnd {
    /// Text frames received before the end.
    pub frames: Vec<String>,
    /// Whether the server sent a close frame (rather than dropping TCP).
    pub close_frame: bool,
}

/// A raw WebSocket client: one Engine.IO packet per frame, exactly as given.
/// Server pings (`2`) are answered (`3`) and skipped by the readers.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The Engine.IO session id.
    pub sid: String,
    next_ack: u64,
}

impl WsClient {
    /// Opens an Engine.IO session over WebSocket.
    pub async fn open(addr: SocketAddr) -> WsClient {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (stream, _) = within(
            "the WebSocket handshake",
            tokio_tungstenite::connect_async(url),
        )
        .await
        .expect("WebSocket handshake");
        let mut ws = WsClient {
            stream,
            sid: String::new(),
            next_ack: 1,
        };
        let open = open_packet(&ws.recv_text().await);
        ws.sid = open["sid"].as_str().expect("sid").to_owned();
        ws
    }

    /// Joins namespace `nsp`; returns the socket id.
    pub async fn join(&mut self, nsp: &str) -> String {
        self.send_text(&connect_packet(nsp)).await;
        let answer = connect_answer(nsp, &self.recv_text().await);
        answer["sid"].as_str().expect("socket id").to_owned()
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        within("a WebSocket send", self.stream.send(Frame::text(text)))
            .await
            .expect("send a text frame");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        within(
            "a WebSocket send",
            self.stream.send(Frame::binary(data.to_vec())),
        )
        .await
        .expect("send a binary frame");
    }

    /// The next frame that is not a ping; `None` once the connection ended.
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.stream.next().await {
                Some(Ok(Frame::Text(text))) if text.as_str() == "2" => {
                    let _ = self.stream.send(Frame::text("3")).await;
                }
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => {}
                Some(Ok(frame)) => return Some(frame),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next text frame; fails the test on anything else.
    pub async fn recv_text(&mut self) -> String {
        match within("a text frame", self.next_frame()).await {
            Some(Frame::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next binary frame; fails the test on anything else.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match within("a binary frame", self.next_frame()).await {
            Some(Frame::Binary(data)) => data.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// Reads until the server ends the connection; returns what came first.
    pub async fn until_closed(&mut self) -> WsEnd {
        within("the server to close the WebSocket", async {
            let mut frames = Vec::new();
            loop {
                match self.next_frame().await {
                    Some(Frame::Text(text)) => frames.push(text.as_str().to_owned()),
                    Some(Frame::Close(_)) => {
                        return WsEnd {
                            frames,
                            close_frame: true,
                        };
                    }
                    Some(other) => panic!("unexpected frame while closing: {other:?}"),
                    None => {
                        return WsEnd {
                            frames,
                            close_frame: false,
                        };
                    }
                }
            }
        })
        .await
    }

    /// Emits `echo` with `text` on the main namespace and checks the ack.
    pub async fn assert_echo(&mut self, text: &str) {
        let id = self.next_ack;
        self.next_ack += 1;
        let arg = serde_json::to_string(text).expect("JSON string");
        self.send_text(&format!("42{id}[\"echo\",{arg}]")).await;
        assert_eq!(self.recv_text().await, format!("43{id}[{arg}]"), "echo ack");
    }

    /// Emits `emit-back` with `text` on the main namespace and checks that
    /// the server emits it back.
    pub async fn assert_emit_back(&mut self, text: &str) {
        let arg = serde_json::to_string(text).expect("JSON string");
        self.send_text(&format!("42[\"emit-back\",{arg}]")).await;
        assert_eq!(self.recv_text().await, format!("42[\"emit-back\",{arg}]"));
    }

    /// Checks that the connection still exchanges events both ways.
    pub async fn assert_alive(&mut self, label: &str) {
        self.assert_echo(&format!("{label}: ack")).await;
        self.assert_emit_back(&format!("{label}: event")).await;
    }
}

// ---------------------------------------------------------------------------
// HTTP long-polling
// ---------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }
}

/// Sends one HTTP/1.1 request on a new connection (`Connection: close`) and
/// reads the whole response.
pub async fn http(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> Response {
    let mut stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    within("an HTTP request to be written", stream.write_all(&request))
        .await
        .expect("write the request");
    let mut raw = Vec::new();
    within(
        &format!("the response to {method} {target}"),
        stream.read_to_end(&mut raw),
    )
    .await
    .expect("read the response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..head_end]).expect("UTF-8 head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response { status, body }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_line = std::str::from_utf8(&rest[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .expect("hex chunk size");
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

/// A raw polling client: POSTs exact payloads, GETs and splits them.
pub struct PollingClient {
    addr: SocketAddr,
    /// The Engine.IO session id.
    pub sid: String,
    next_ack: u64,
}

impl PollingClient {
    /// Opens an Engine.IO session over polling.
    pub async fn open(addr: SocketAddr) -> PollingClient {
        let response = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
        assert_eq!(response.status, 200, "handshake: {}", response.text());
        let open = open_packet(response.text());
        PollingClient {
            addr,
            sid: open["sid"].as_str().expect("sid").to_owned(),
            next_ack: 1,
        }
    }

    fn target(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs `payload` as is; returns the response.
    pub async fn post(&self, payload: &str) -> Response {
        http(self.addr, "POST", &self.target(), payload.as_bytes()).await
    }

    /// POSTs `payload`, which must be answered `ok`.
    pub async fn send(&self, payload: &str) {
        let response = self.post(payload).await;
        assert_eq!(
            response.status,
            200,
            "POST {payload:?}: {}",
            response.text()
        );
        assert_eq!(response.text(), "ok");
    }

    /// One GET; returns the response. Only call it when something is due:
    /// an idle session holds a GET until the next ping.
    pub async fn get(&self) -> Response {
        http(self.addr, "GET", &self.target(), b"").await
    }

    /// One GET that must succeed; returns its packets, pings answered and
    /// left out.
    pub async fn poll(&self) -> Vec<String> {
        let response = self.get().await;
        assert_eq!(response.status, 200, "GET: {}", response.text());
        let mut packets = Vec::new();
        for packet in response.text().split('\u{1e}') {
            if packet == "2" {
                self.send("3").await;
            } else {
                packets.push(packet.to_owned());
            }
        }
        packets
    }

    /// Joins the main namespace; returns the socket id.
    pub async fn join_main(&mut self) -> String {
        self.send("40").await;
        let packets = self.poll().await;
        assert_eq!(packets.len(), 1, "CONNECT answer: {packets:?}");
        connect_answer("/", &packets[0])["sid"]
            .as_str()
            .expect("socket id")
            .to_owned()
    }

    /// Emits `echo` with `text` on the main namespace and checks the ack.
    pub async fn assert_echo(&mut self, text: &str) {
        let id = self.next_ack;
        self.next_ack += 1;
        let arg = serde_json::to_string(text).expect("JSON string");
        self.send(&format!("42{id}[\"echo\",{arg}]")).await;
        assert_eq!(
            self.poll().await,
            vec![format!("43{id}[{arg}]")],
            "echo ack"
        );
    }

    /// Waits for the Engine.IO close packet: the GETs up to it must hold
    /// nothing else. Then checks that the session is unknown.
    pub async fn assert_closed_by_server(&self) {
        let packets = self.poll().await;
        assert_eq!(packets, vec!["1".to_owned()], "the close packet alone");
        let after = self.get().await;
        assert_eq!(after.status, 400, "GET after close: {}", after.text());
        let error: Value = serde_json::from_slice(&after.body).expect("JSON error");
        assert_eq!(error["code"], 1, "Session ID unknown: {error}");
    }
}
