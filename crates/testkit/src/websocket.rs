//! A raw WebSocket client (tokio-tungstenite) whose every wait is bounded:
//! frames exactly as the test sends them, and every frame the server sends
//! but WebSocket pings and pongs. It knows nothing of Engine.IO: a `2` is a
//! text frame like any other (the heartbeat tests need to see them); the
//! Socket.IO client [`WsClient`](crate::WsClient) answers them.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as Frame};

use crate::wait::{WAIT, try_within, within};

/// The server's answer to a WebSocket handshake.
pub type WsResponse = tungstenite::handshake::client::Response;

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

/// A WebSocket client connection.
///
/// ```no_run
/// # async fn example(addr: std::net::SocketAddr) {
/// use iocluster_testkit::WsConnection;
/// let (mut ws, _) = WsConnection::connect(addr, "/socket.io/?EIO=4&transport=websocket")
///     .await
///     .expect("handshake");
/// let open = ws.recv_text().await;
/// assert!(open.starts_with('0'));
/// ws.close().await;
/// # }
/// ```
pub struct WsConnection {
    /// The underlying stream.
    pub inner: WebSocketStream<TcpStream>,
}

impl WsConnection {
    /// Opens a WebSocket to `target` (path and query) on `addr`, over a new
    /// TCP connection; the error (a refused upgrade, a connection or
    /// handshake that fails or takes longer than [`WAIT`]) is the test's to
    /// check.
    pub async fn connect(
        addr: SocketAddr,
        target: &str,
    ) -> Result<(WsConnection, WsResponse), tungstenite::Error> {
        WsConnection::connect_with_headers(addr, target, &[]).await
    }

    /// [`connect`](Self::connect) with extra request headers (`Cookie`,
    /// `Origin`, ...).
    pub async fn connect_with_headers(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Result<(WsConnection, WsResponse), tungstenite::Error> {
        let mut request = format!("ws://{addr}{target}").into_client_request()?;
        for (name, value) in headers {
            let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("a valid header name");
            let value = HeaderValue::from_str(value).expect("a valid header value");
            request.headers_mut().append(name, value);
        }
        let stream = try_within(WAIT, "TCP connection", TcpStream::connect(addr)).await?;
        let _ = stream.set_nodelay(true);
        let handshake = tokio_tungstenite::client_async(request, stream);
        match tokio::time::timeout(WAIT, handshake).await {
            Ok(result) => result.map(|(inner, response)| (WsConnection { inner }, response)),
            Err(_) => Err(tungstenite::Error::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no WebSocket handshake within {WAIT:?}"),
            ))),
        }
    }

    /// Wraps a stream already past its handshake.
    pub fn new(inner: WebSocketStream<TcpStream>) -> WsConnection {
        WsConnection { inner }
    }

    /// Sends `frame`.
    pub async fn try_send(&mut self, frame: Frame) -> io::Result<()> {
        try_within(WAIT, "a WebSocket send", async {
            self.inner.send(frame).await.map_err(io::Error::other)
        })
        .await
    }

    /// Sends a text frame; fails the test on error.
    pub async fn send_text(&mut self, text: &str) {
        self.try_send(Frame::text(text))
            .await
            .expect("send a text frame");
    }

    /// Sends a binary frame; fails the test on error.
    pub async fn send_binary(&mut self, data: &[u8]) {
        self.try_send(Frame::binary(data.to_vec()))
            .await
            .expect("send a binary frame");
    }

    /// The next frame that is not a WebSocket ping or pong, however long it
    /// takes (the caller bounds it); an error once the connection ended or
    /// failed.
    pub async fn next_frame(&mut self) -> io::Result<Frame> {
        loop {
            match self.inner.next().await {
                Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
                Some(Ok(frame)) => return Ok(frame),
                Some(Err(error)) => {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, error));
                }
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "WebSocket ended",
                    ));
                }
            }
        }
    }

    /// The next frame within [`WAIT`]; `None` when the connection ended or
    /// failed.
    pub async fn recv(&mut self) -> Option<Frame> {
        within(WAIT, "a WebSocket frame", self.next_frame())
            .await
            .ok()
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
        let _ = within(WAIT, "a WebSocket close", self.inner.close(None)).await;
        within(WAIT, "the close handshake", async {
            while let Some(Ok(_)) = self.inner.next().await {}
        })
        .await;
    }
}
