//! The Engine.IO WebSocket transport, client side: a new session straight
//! over WebSocket, or the upgrade of a polling session (`2probe`,
//! `3probe`, `5`). Pings (`2`) are answered (`3`) while reading.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::error::ClientError;
use crate::net::Connector;
use crate::packet::{EnginePacket, Handshake};
use crate::target::Target;

/// One Engine.IO session over WebSocket.
#[derive(Debug)]
pub struct WebSocketTransport {
    stream: WebSocketStream<TcpStream>,
    timeout: Duration,
    sid: String,
    pings_answered: u64,
}

impl WebSocketTransport {
    /// Opens a new session over WebSocket and reads its open packet.
    pub async fn open(connector: &Connector, target: &Target) -> Result<Self, ClientError> {
        let stream = connect(connector, &target.websocket_url(None)).await?;
        let mut transport = WebSocketTransport {
            stream,
            timeout: connector.timeout(),
            sid: String::new(),
            pings_answered: 0,
        };
        let deadline = Instant::now() + transport.timeout;
        let text = transport
            .next_text(deadline)
            .await?
            .ok_or(ClientError::Timeout("the open packet"))?;
        match EnginePacket::parse(&text)? {
            EnginePacket::Open(json) => transport.sid = Handshake::parse(json)?.sid,
            _ => return Err(ClientError::unexpected(&text)),
        }
        Ok(transport)
    }

    /// Upgrades polling session `sid` to WebSocket: `2probe`, `3probe`,
    /// then `5`. From then on the session's packets arrive here.
    pub async fn upgrade(
        connector: &Connector,
        target: &Target,
        sid: &str,
    ) -> Result<Self, ClientError> {
        let stream = connect(connector, &target.websocket_url(Some(sid))).await?;
        let mut transport = WebSocketTransport {
            stream,
            timeout: connector.timeout(),
            sid: sid.to_owned(),
            pings_answered: 0,
        };
        transport.send("2probe").await?;
        let deadline = Instant::now() + transport.timeout;
        let text = transport
            .next_text(deadline)
            .await?
            .ok_or(ClientError::Timeout("3probe"))?;
        if text.as_str() != "3probe" {
            return Err(ClientError::unexpected(&text));
        }
        transport.send("5").await?;
        Ok(transport)
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Pings (`2`) answered so far.
    pub fn pings_answered(&self) -> u64 {
        self.pings_answered
    }

    /// Sends one Engine.IO packet (text), within the timeout.
    pub async fn send(&mut self, packet: &str) -> Result<(), ClientError> {
        self.send_text(Utf8Bytes::from(packet)).await
    }

    /// Sends one Engine.IO packet already owned as a `String`.
    pub async fn send_owned(&mut self, packet: String) -> Result<(), ClientError> {
        self.send_text(Utf8Bytes::from(packet)).await
    }

    async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), ClientError> {
        tokio::time::timeout(self.timeout, self.stream.send(Message::Text(text)))
            .await
            .map_err(|_| ClientError::Timeout("a WebSocket write"))??;
        Ok(())
    }

    /// The next message packet (`4...`), within the timeout; pings are
    /// answered and noops skipped on the way.
    pub async fn recv(&mut self) -> Result<Utf8Bytes, ClientError> {
        let deadline = Instant::now() + self.timeout;
        self.recv_until(deadline)
            .await?
            .ok_or(ClientError::Timeout("a WebSocket message"))
    }

    /// The next message packet (`4...`), or `None` at `deadline`.
    pub async fn recv_until(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Utf8Bytes>, ClientError> {
        loop {
            let Some(text) = self.next_text(deadline).await? else {
                return Ok(None);
            };
            match EnginePacket::parse(&text)? {
                EnginePacket::Message(_) => return Ok(Some(text)),
                EnginePacket::Ping(data) => {
                    let pong = format!("3{data}");
                    self.send_owned(pong).await?;
                    self.pings_answered += 1;
                }
                EnginePacket::Noop => {}
                EnginePacket::Close => {
                    return Err(ClientError::Closed("the server closed the session"));
                }
                EnginePacket::Open(_) | EnginePacket::Pong(_) | EnginePacket::Upgrade => {
                    return Err(ClientError::unexpected(&text));
                }
            }
        }
    }

    /// The next text frame, or `None` at `deadline`.
    async fn next_text(&mut self, deadline: Instant) -> Result<Option<Utf8Bytes>, ClientError> {
        loop {
            let frame = tokio::select! {
                frame = self.stream.next() => frame,
                () = tokio::time::sleep_until(deadline) => return Ok(None),
            };
            match frame {
                Some(Ok(Message::Text(text))) => return Ok(Some(text)),
                Some(Ok(Message::Binary(_))) => {
                    return Err(ClientError::unexpected("a binary frame"));
                }
                // tungstenite answers WebSocket pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => {
                    return Err(ClientError::Closed("WebSocket closed by the server"));
                }
                Some(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Closes the session (`1`) and the WebSocket, within the timeout;
    /// errors are ignored (the server may close first).
    pub async fn close(mut self) {
        let _ = self.send("1").await;
        let _ = tokio::time::timeout(self.timeout, self.stream.close(None)).await;
    }
}

/// A WebSocket connection to `url` over a new TCP connection.
/// A client's WebSocket buffers: tungstenite starts each connection with a
/// 128 KiB read buffer and writes through a buffer of up to 128 KiB, which
/// made a generator holding 18,000 idle sessions take 1.7 GB. Frames here
/// are small; the buffers still grow for a large one.
fn lean_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
}

/// The initial read buffer of a client's WebSocket.
const READ_BUFFER: usize = 4096;

async fn connect(
    connector: &Connector,
    url: &str,
) -> Result<WebSocketStream<TcpStream>, ClientError> {
    let tcp = connector.connect().await?;
    let (stream, _response) = tokio::time::timeout(
        connector.timeout(),
        tokio_tungstenite::client_async_with_config(url, tcp, Some(lean_config())),
    )
    .await
    .map_err(|_| ClientError::Timeout("the WebSocket handshake"))??;
    Ok(stream)
}
