//! A Socket.IO client over a WebSocket (no polling first): raw Engine.IO
//! packets, one per frame, exactly as given. Engine.IO pings (`2`) are
//! answered (`3`) and never returned.
//!
//! Two styles side by side, for two kinds of test: fallible methods
//! (`io::Result`) for tests that count failures (a rolling restart, a
//! killed worker), and `assert_`/panicking ones that state the exact
//! exchange a test expects.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio_tungstenite::tungstenite::Message as Frame;

use crate::packets::{
    ENGINE_PATH, connect_answer, connect_packet, connect_packet_sid, echo_ack, echo_packet,
    event_offset, open_packet_sid, welcome_worker,
};
use crate::wait::{WAIT, try_within, within};
use crate::websocket::WsConnection;

/// How a Socket.IO WebSocket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsClosed {
    /// The Engine.IO packets (text frames) received before the end.
    pub packets: Vec<String>,
    /// Whether the server sent a close frame (rather than dropping TCP).
    pub close_frame: bool,
}

/// A Socket.IO client on a WebSocket.
///
/// ```no_run
/// # async fn example(addr: std::net::SocketAddr) -> std::io::Result<()> {
/// use iocluster_testkit::WsClient;
/// let mut client = WsClient::open(addr).await?;
/// assert!(!client.join("/").await.is_empty());
/// client.assert_echo("hello").await;
/// client.close().await;
/// # Ok(()) }
/// ```
pub struct WsClient {
    ws: WsConnection,
    /// The Engine.IO session id.
    pub sid: String,
    /// The Socket.IO socket id on the main namespace, once connected.
    pub id: String,
    /// The pid of the worker serving it (from the `iocluster` app's
    /// `welcome`; 0 for other servers).
    pub worker: u32,
    /// The connection-state-recovery id from the CONNECT answer, if any.
    pub recovery_pid: Option<String>,
    /// The recovery offset of the last event received, if any.
    pub offset: Option<String>,
    next_ack: u64,
    /// Packets of the namespace read while waiting for its CONNECT (Node
    /// sends a recovered socket's missed events before it), given back
    /// first by [`WsClient::next_packet`], as socket.io-client buffers them.
    early: std::collections::VecDeque<String>,
}

impl WsClient {
    /// Opens the WebSocket and reads the Engine.IO open packet `0{...}`;
    /// no namespace joined yet.
    pub async fn open(addr: SocketAddr) -> io::Result<WsClient> {
        let target = format!("{ENGINE_PATH}&transport=websocket");
        let (ws, _) = WsConnection::connect(addr, &target)
            .await
            .map_err(io::Error::other)?;
        let mut client = WsClient::upgraded(ws, "");
        let open = client.next_packet().await?;
        client.sid = open_packet_sid(&open)?;
        Ok(client)
    }

    /// A client on `ws`, a WebSocket of Engine.IO session `sid` (an
    /// upgrade the test made by hand).
    pub fn upgraded(ws: WsConnection, sid: &str) -> WsClient {
        WsClient {
            ws,
            sid: sid.to_owned(),
            id: String::new(),
            worker: 0,
            recovery_pid: None,
            offset: None,
            next_ack: 1,
            early: std::collections::VecDeque::new(),
        }
    }

    /// Connects to an `iocluster` app: opens the WebSocket, sends `40`,
    /// reads the CONNECT answer and the `welcome` event.
    pub async fn connect(addr: SocketAddr) -> io::Result<WsClient> {
        let mut client = WsClient::open(addr).await?;
        client.connect_namespace("40").await?;
        client.worker = client.read_welcome().await?;
        Ok(client)
    }

    /// [`connect`](Self::connect) asking to recover the socket
    /// `recovery_pid` from `offset` (as socket.io-client does when it
    /// reconnects).
    pub async fn connect_recovering(
        addr: SocketAddr,
        recovery_pid: &str,
        offset: &str,
    ) -> io::Result<WsClient> {
        let mut client = WsClient::open(addr).await?;
        let auth = serde_json::json!({ "pid": recovery_pid, "offset": offset });
        client.connect_namespace(&format!("40{auth}")).await?;
        client.worker = client.read_welcome().await?;
        Ok(client)
    }

    /// Sends `connect` (a CONNECT packet to the main namespace) and reads
    /// until its answer: sets the socket id and the recovery pid. Messages
    /// read before it (a recovered socket's missed events, from Node) are
    /// kept for [`next_packet`](Self::next_packet).
    pub async fn connect_namespace(&mut self, connect: &str) -> io::Result<()> {
        self.send(connect).await?;
        loop {
            let packet = self.read_packet().await?;
            if let Some(id) = connect_packet_sid(&packet) {
                let answer: serde_json::Value =
                    serde_json::from_str(&packet[2..]).unwrap_or_default();
                self.id = id;
                self.recovery_pid = answer["pid"].as_str().map(str::to_owned);
                return Ok(());
            }
            if packet.starts_with("44") {
                return Err(io::Error::other(format!("connect refused: {packet}")));
            }
            if packet.starts_with('4') {
                self.early.push_back(packet);
            }
        }
    }

    /// Reads until the `welcome` event: the pid of the worker it names.
    pub async fn read_welcome(&mut self) -> io::Result<u32> {
        loop {
            if let Some(pid) = welcome_worker(&self.next_packet().await?) {
                return Ok(pid);
            }
        }
    }

    /// Joins namespace `nsp`: the next packet must be its CONNECT answer.
    /// Returns the socket id.
    pub async fn join(&mut self, nsp: &str) -> String {
        self.send_text(&connect_packet(nsp)).await;
        let answer = connect_answer(nsp, &self.recv_text().await);
        answer["sid"].as_str().expect("socket id").to_owned()
    }

    /// Sends one Engine.IO packet as a text frame.
    pub async fn send(&mut self, packet: &str) -> io::Result<()> {
        self.ws.try_send(Frame::text(packet)).await
    }

    /// [`send`](Self::send), failing the test on error.
    pub async fn send_text(&mut self, packet: &str) {
        self.ws.send_text(packet).await;
    }

    /// Sends a binary frame (an attachment), failing the test on error.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.ws.send_binary(data).await;
    }

    /// The next frame that is no ping, however long it takes (the caller
    /// bounds it); an error once the connection ended.
    pub async fn next_frame(&mut self) -> io::Result<Frame> {
        loop {
            match self.ws.next_frame().await? {
                Frame::Text(text) if text.as_str() == "2" => self.send("3").await?,
                frame => return Ok(frame),
            }
        }
    }

    /// The next Engine.IO packet (binary frames are skipped); an error if
    /// the connection closes first or nothing comes within [`WAIT`].
    pub async fn next_packet(&mut self) -> io::Result<String> {
        if let Some(packet) = self.early.pop_front() {
            return Ok(packet);
        }
        self.read_packet().await
    }

    /// The next packet off the connection.
    async fn read_packet(&mut self) -> io::Result<String> {
        try_within(WAIT, "WebSocket packet", async {
            loop {
                match self.next_frame().await? {
                    Frame::Text(text) => {
                        if let Some(offset) = event_offset(text.as_str()) {
                            self.offset = Some(offset);
                        }
                        return Ok(text.as_str().to_owned());
                    }
                    Frame::Close(frame) => {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!("WebSocket closed by the server: {frame:?}"),
                        ));
                    }
                    _ => {}
                }
            }
        })
        .await
    }

    /// The next frame, which must be text.
    pub async fn recv_text(&mut self) -> String {
        match within(WAIT, "a text frame", self.next_frame()).await {
            Ok(Frame::Text(text)) => text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next frame, which must be binary.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        match within(WAIT, "a binary frame", self.next_frame()).await {
            Ok(Frame::Binary(data)) => data.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// Emits `echo(text)` with ack id `ack` and reads until the ack.
    pub async fn echo(&mut self, ack: u64, text: &str) -> io::Result<()> {
        self.send(&echo_packet(ack, text)).await?;
        let expected = echo_ack(ack, text);
        while self.next_packet().await? != expected {}
        Ok(())
    }

    /// Emits `echo(text)` with the next ack id: the next packet must be
    /// the ack.
    pub async fn assert_echo(&mut self, text: &str) {
        let ack = self.next_ack;
        self.next_ack += 1;
        self.send_text(&echo_packet(ack, text)).await;
        assert_eq!(self.recv_text().await, echo_ack(ack, text), "echo ack");
    }

    /// Emits `emit-back(text)`: the next packet must be the server's
    /// `emit-back(text)`.
    pub async fn assert_emit_back(&mut self, text: &str) {
        let event = format!("42{}", serde_json::json!(["emit-back", text]));
        self.send_text(&event).await;
        assert_eq!(self.recv_text().await, event);
    }

    /// Checks that the connection still exchanges events both ways (an
    /// `echo` ack and an `emit-back`).
    pub async fn assert_alive(&mut self, label: &str) {
        self.assert_echo(&format!("{label}: ack")).await;
        self.assert_emit_back(&format!("{label}: event")).await;
    }

    /// Reads until the connection ends, within `limit`: how it ended and
    /// the packets that came before. A binary frame is an error.
    pub async fn ended(&mut self, limit: Duration) -> io::Result<WsClosed> {
        try_within(limit, "the WebSocket to end", async {
            let mut packets = Vec::new();
            loop {
                match self.next_frame().await {
                    Ok(Frame::Text(text)) => packets.push(text.as_str().to_owned()),
                    Ok(Frame::Close(_)) => {
                        return Ok(WsClosed {
                            packets,
                            close_frame: true,
                        });
                    }
                    Ok(other) => {
                        return Err(io::Error::other(format!(
                            "unexpected frame while closing: {other:?}"
                        )));
                    }
                    Err(_) => {
                        return Ok(WsClosed {
                            packets,
                            close_frame: false,
                        });
                    }
                }
            }
        })
        .await
    }

    /// [`ended`](Self::ended) within [`WAIT`], failing the test on error.
    pub async fn until_closed(&mut self) -> WsClosed {
        self.ended(WAIT)
            .await
            .expect("the server to close the WebSocket")
    }

    /// Sends a close frame (errors ignored) without waiting for the answer.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.ws.inner.close(None)).await;
    }
}
