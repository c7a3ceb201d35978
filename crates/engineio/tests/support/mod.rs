//! Helpers shared by the engine's integration tests: a real engine listening
//! on `127.0.0.1:0`, a handler that records what it is told, a raw HTTP/1.1
//! client that writes exact bytes, a WebSocket client, and waits that always
//! end.
//!
//! Every wait is bounded by [`STEP`]; a test that would hang fails instead,
//! naming what it was waiting for.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use iocluster_engineio::{CloseReason, Engine, EngineConfig, EngineHandler, Message, Session};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

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
/// [`STEP`]. For state that no event announces (a session table, a task
/// count).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what} did not happen within {STEP:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Parses an open packet (`0{...}`) into its JSON.
pub fn open_packet(packet: &str) -> Value {
    let json = packet
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {packet:?}"));
    serde_json::from_str(json).expect("open packet JSON")
}

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
    events: Mutex<Vec<Event>>,
    changed: Notify,
}

impl Recorder {
    fn new(echo: bool) -> Self {
        Recorder {
            echo,
            events: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, event: Event) {
        self.lock().push(event);
        self.changed.notify_waiters();
    }

    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().clone()
    }

    /// Waits until `find` returns something for the events recorded so far.
    pub async fn wait_for<T>(&self, what: &str, mut find: impl FnMut(&[Event]) -> Option<T>) -> T {
        within(what, async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(found) = find(&self.lock()) {
                    return found;
                }
                changed.await;
            }
        })
        .await
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
        self.lock()
            .iter()
            .filter_map(|e| match e {
                Event::Close(s, reason) if s == sid => Some(*reason),
                _ => None,
            })
            .collect()
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
        self.wait_for(&format!("on_upgrade of {sid}"), |events| {
            events
                .iter()
                .any(|e| *e == Event::Upgrade(sid.to_owned()))
                .then_some(())
        })
        .await
    }

    /// Waits for the session's `on_open`.
    pub async fn opened(&self, sid: &str) {
        self.wait_for(&format!("on_open of {sid}"), |events| {
            events
                .iter()
                .any(|e| *e == Event::Open(sid.to_owned()))
                .then_some(())
        })
        .await
    }
}

impl EngineHandler for Recorder {
    fn on_open(&self, session: &Arc<Session>) {
        self.record(Event::Open(session.id().to_string()));
    }

    fn on_message(&self, session: &Arc<Session>, message: Message) {
        self.record(Event::Message(session.id().to_string(), message.clone()));
        if self.echo {
            let _ = session.send(message);
        }
    }

    fn on_close(&self, session: &Arc<Session>, reason: CloseReason) {
        self.record(Event::Close(session.id().to_string(), reason));
    }

    fn on_upgrade(&self, session: &Arc<Session>) {
        self.record(Event::Upgrade(session.id().to_string()));
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
    pub async fn connect(&self) -> HttpConn {
        HttpConn::connect(self.addr).await
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
    /// read its answer with [`HttpConn::read_response`].
    pub async fn begin_poll(&self, sid: &str) -> HttpConn {
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
        eventually(&format!("{sid} to show {needle}"), || {
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
        eventually(&format!("{sid} to leave the session table"), || {
            engine.session(sid).is_none()
        })
        .await;
    }

    /// A WebSocket handshake for `query`, over a fresh TCP connection.
    pub async fn ws_connect(
        &self,
        query: &str,
    ) -> Result<(WsClient, WsResponse), tungstenite::Error> {
        ws_connect_to(self.addr, &self.target(query)).await
    }

    /// Opens a session directly over WebSocket; returns the client, its sid
    /// and the open packet.
    pub async fn open_websocket(&self) -> (WsClient, String, Value) {
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
    pub async fn upgrade(&self, sid: &str) -> WsClient {
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
    let (mut stream, _) = within("accept", listener.accept()).await.expect("accept");
    let mut prefix = vec![0u8; k];
    within("the first bytes", stream.read_exact(&mut prefix))
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
// Raw HTTP/1.1
// ---------------------------------------------------------------------------

/// The bytes of an HTTP/1.1 request. A `Content-Length` is added for a body
/// and for every POST and PUT.
pub fn http_request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

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

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether any header starts with `prefix` (case-insensitive).
    pub fn has_header_starting_with(&self, prefix: &str) -> bool {
        self.headers.iter().any(|(n, _)| {
            n.to_ascii_lowercase()
                .starts_with(&prefix.to_ascii_lowercase())
        })
    }

    /// The status, the headers but `Date`, and the body with `sid`
    /// replaced by `<sid>`: what two answers to the same request share.
    pub fn normalized(&self, sid: &str) -> (u16, Vec<(String, String)>, String) {
        let headers = self
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.replace(sid, "<sid>")))
            .collect();
        let body = String::from_utf8_lossy(&self.body).replace(sid, "<sid>");
        (self.status, headers, body)
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("JSON body ({e}): {:?}", self.text()))
    }

    /// Asserts an Engine.IO error: `status`, JSON content type and body
    /// `{"code":code,"message":message}`.
    pub fn assert_engine_error(&self, status: u16, code: u8, message: &str) {
        assert_eq!(self.status, status, "body: {:?}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(
            self.json(),
            serde_json::json!({ "code": code, "message": message })
        );
    }
}

/// One HTTP/1.1 connection: write exact bytes, read whole responses.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl HttpConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> HttpConn {
        let stream = within("TCP connect", TcpStream::connect(addr))
            .await
            .expect("connect");
        HttpConn::from_stream(stream)
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> HttpConn {
        let _ = stream.set_nodelay(true);
        HttpConn {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Writes `bytes` and flushes.
    pub async fn write(&mut self, bytes: &[u8]) {
        within("a write", self.stream.write_all(bytes))
            .await
            .expect("write");
    }

    /// Reads one response; fails the test on error or after [`STEP`].
    pub async fn read_response(&mut self) -> Response {
        within("an HTTP response", self.try_read_response())
            .await
            .expect("read an HTTP response")
    }

    /// Reads one response. Cancel-safe: what was read stays buffered.
    pub async fn try_read_response(&mut self) -> std::io::Result<Response> {
        loop {
            match parse_response(&self.buf, self.eof) {
                Ok(Some((response, used))) => {
                    self.buf.drain(..used);
                    return Ok(response);
                }
                Ok(None) => {}
                Err(message) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        message,
                    ));
                }
            }
            if self.eof {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
    }

    /// True when no byte arrives within `window`: the bounded wait that
    /// shows a request is still pending.
    pub async fn receives_nothing_within(&self, window: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut byte = [0u8; 1];
        tokio::time::timeout(window, self.stream.peek(&mut byte))
            .await
            .is_err()
    }

    /// Waits until the server closes the connection; returns what it sent
    /// that was not read yet.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        within("the server to close the connection", async {
            while !self.eof {
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => self.eof = true,
                    Ok(_) => {}
                }
            }
        })
        .await;
        std::mem::take(&mut self.buf)
    }

    /// The stream and the bytes read past the last response.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buf)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response from `buf`: `Ok(None)` while incomplete, with the
/// number of bytes it used.
fn parse_response(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>, String> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let response = |body: Vec<u8>| Response {
        status,
        headers: headers.clone(),
        body,
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let body_start = head_end + 4;
    let rest = &buf[body_start..];
    if status < 200 || status == 204 || status == 304 {
        return Ok(Some((response(Vec::new()), body_start)));
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let Some(line_end) = find(&rest[at..], b"\r\n") else {
                return Ok(None);
            };
            let size_line =
                std::str::from_utf8(&rest[at..at + line_end]).map_err(|e| e.to_string())?;
            let size_hex = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| format!("bad chunk size {size_line:?}"))?;
            let data_start = at + line_end + 2;
            if size == 0 {
                // No trailers: the final CRLF follows.
                if rest.len() < data_start + 2 {
                    return Ok(None);
                }
                return Ok(Some((response(body), body_start + data_start + 2)));
            }
            if rest.len() < data_start + size + 2 {
                return Ok(None);
            }
            body.extend_from_slice(&rest[data_start..data_start + size]);
            at = data_start + size + 2;
        }
    }
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad content-length {length:?}"))?;
        if rest.len() < length {
            return Ok(None);
        }
        return Ok(Some((
            response(rest[..length].to_vec()),
            body_start + length,
        )));
    }
    // Neither: the body runs to the end of the connection.
    if eof {
        Ok(Some((response(rest.to_vec()), buf.len())))
    } else {
        Ok(None)
    }
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

/// The server's answer to a WebSocket handshake.
pub type WsResponse = tungstenite::handshake::client::Response;

/// Opens a WebSocket to `target` (path and query) on `addr`.
pub async fn ws_connect_to(
    addr: SocketAddr,
    target: &str,
) -> Result<(WsClient, WsResponse), tungstenite::Error> {
    let stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    let _ = stream.set_nodelay(true);
    let url = format!("ws://{addr}{target}");
    let (inner, response) = within(
        "a WebSocket handshake",
        tokio_tungstenite::client_async(url, stream),
    )
    .await?;
    Ok((WsClient { inner }, response))
}

/// How a WebSocket ended, as the client saw it.
#[derive(Debug)]
pub struct WsEnd {
    /// The data frames received before the end.
    pub frames: Vec<Frame>,
    /// The close code, when the server sent a close frame with one.
    pub code: Option<u16>,
    /// Whether the server sent a close frame at all.
    pub close_frame: bool,
}

/// A WebSocket client whose reads are bounded by [`STEP`].
pub struct WsClient {
    /// The underlying stream.
    pub inner: WebSocketStream<TcpStream>,
}

impl WsClient {
    /// Wraps a stream already past its handshake.
    pub fn new(inner: WebSocketStream<TcpStream>) -> WsClient {
        WsClient { inner }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        within("a WebSocket send", self.inner.send(Frame::text(text)))
            .await
            .expect("send a text frame");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) {
        within(
            "a WebSocket send",
            self.inner.send(Frame::binary(data.to_vec())),
        )
        .await
        .expect("send a binary frame");
    }

    /// The next frame that is not a WebSocket ping or pong; `None` when the
    /// connection ended or failed.
    pub async fn recv(&mut self) -> Option<Frame> {
        within("a WebSocket frame", async {
            loop {
                match self.inner.next().await {
                    Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                    Some(Ok(frame)) => return Some(frame),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
    }

    /// The next frame, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Some(Frame::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame, which must be binary.
    pub async fn recv_binary(&mut self) -> Bytes {
        match self.recv().await {
            Some(Frame::Binary(data)) => data,
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// Reads until the server ends the connection.
    pub async fn until_closed(&mut self) -> WsEnd {
        let mut end = WsEnd {
            frames: Vec::new(),
            code: None,
            close_frame: false,
        };
        loop {
            match self.recv().await {
                Some(Frame::Close(frame)) => {
                    end.close_frame = true;
                    end.code = frame.map(|f| u16::from(f.code));
                    return end;
                }
                Some(frame) => end.frames.push(frame),
                None => return end,
            }
        }
    }

    /// Closes with a close frame and waits for the server's answer.
    pub async fn close(mut self) {
        let _ = within("a WebSocket close", self.inner.close(None)).await;
        within("the close handshake", async {
            while let Some(Ok(_)) = self.inner.next().await {}
        })
        .await;
    }
}
