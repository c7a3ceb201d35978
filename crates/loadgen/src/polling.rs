//! The Engine.IO long-polling transport, client side: one kept-alive HTTP
//! connection per session, one request at a time (POST to send, GET to
//! receive). Pings found in a GET are answered with a POST of `3`.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::ClientError;
use crate::http::HttpConnection;
use crate::net::Connector;
use crate::packet::{EnginePacket, Handshake, RECORD_SEPARATOR, payload_packets};
use crate::target::Target;

/// The most message packets kept from GETs before the caller reads them
/// (a GET carries what the server had queued; this bounds a runaway).
const MAX_INBOX: usize = 4096;

/// One Engine.IO session over HTTP long-polling.
#[derive(Debug)]
pub struct PollingTransport {
    http: HttpConnection,
    handshake: Handshake,
    /// The request target with this session's `sid`.
    session_target: String,
    inbox: VecDeque<Utf8Bytes>,
    closed_by_server: bool,
    pings_answered: u64,
}

impl PollingTransport {
    /// The handshake: `GET ?EIO=4&transport=polling`.
    pub async fn open(connector: Arc<Connector>, target: &Target) -> Result<Self, ClientError> {
        let mut http = HttpConnection::new(connector);
        let response = http
            .request("GET", &target.polling_target(None), b"")
            .await?;
        if response.status != 200 {
            return Err(ClientError::http(response.status, &response.body));
        }
        let body = text(&response.body)?;
        let first = payload_packets(body)
            .next()
            .ok_or_else(|| ClientError::unexpected("an empty handshake response"))?;
        let handshake = match EnginePacket::parse(first)? {
            EnginePacket::Open(json) => Handshake::parse(json)?,
            _ => return Err(ClientError::unexpected(first)),
        };
        Ok(PollingTransport {
            http,
            session_target: target.polling_target(Some(&handshake.sid)),
            handshake,
            inbox: VecDeque::new(),
            closed_by_server: false,
            pings_answered: 0,
        })
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &str {
        &self.handshake.sid
    }

    /// The handshake the server sent.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// TCP connections this session opened (one unless the server closed
    /// a kept-alive connection).
    pub fn connections_opened(&self) -> u64 {
        self.http.connections_opened
    }

    /// Pings (`2`) answered so far.
    pub fn pings_answered(&self) -> u64 {
        self.pings_answered
    }

    /// POSTs Engine.IO packets as one payload; the server must answer
    /// `200 ok`.
    pub async fn send_all(&mut self, packets: &[&str]) -> Result<(), ClientError> {
        let body = packets.join(&RECORD_SEPARATOR.to_string());
        let response = self
            .http
            .request("POST", &self.session_target, body.as_bytes())
            .await?;
        if response.status != 200 {
            return Err(ClientError::http(response.status, &response.body));
        }
        if &response.body[..] != b"ok" {
            return Err(ClientError::unexpected(&String::from_utf8_lossy(
                &response.body,
            )));
        }
        Ok(())
    }

    /// POSTs one Engine.IO packet.
    pub async fn send(&mut self, packet: &str) -> Result<(), ClientError> {
        self.send_all(&[packet]).await
    }

    /// The next message packet (`4...`): from what an earlier GET
    /// brought, or from new GETs (each within the timeout).
    pub async fn recv(&mut self) -> Result<Utf8Bytes, ClientError> {
        loop {
            if let Some(message) = self.inbox.pop_front() {
                return Ok(message);
            }
            if self.closed_by_server {
                return Err(ClientError::Closed("the server closed the session"));
            }
            self.poll().await?;
        }
    }

    /// One GET: queues its messages, answers its pings.
    async fn poll(&mut self) -> Result<(), ClientError> {
        let response = self.http.request("GET", &self.session_target, b"").await?;
        if response.status != 200 {
            return Err(ClientError::http(response.status, &response.body));
        }
        let mut pongs = Vec::new();
        for packet in payload_packets(text(&response.body)?) {
            match EnginePacket::parse(packet)? {
                EnginePacket::Message(_) => {
                    if self.inbox.len() >= MAX_INBOX {
                        return Err(ClientError::unexpected("more than 4096 unread messages"));
                    }
                    self.inbox.push_back(Utf8Bytes::from(packet));
                }
                EnginePacket::Ping(data) => pongs.push(format!("3{data}")),
                EnginePacket::Noop => {}
                EnginePacket::Close => self.closed_by_server = true,
                EnginePacket::Open(_) | EnginePacket::Pong(_) | EnginePacket::Upgrade => {
                    return Err(ClientError::unexpected(packet));
                }
            }
        }
        if !pongs.is_empty() && !self.closed_by_server {
            let pongs: Vec<&str> = pongs.iter().map(String::as_str).collect();
            self.send_all(&pongs).await?;
            self.pings_answered += pongs.len() as u64;
        }
        Ok(())
    }

    /// Closes the session as socket.io-client does: POST `1` on a second
    /// connection while a GET is pending on the first (the server answers
    /// that GET, and would otherwise hold the close a moment waiting for
    /// it). Errors are ignored: the session is going away either way.
    pub async fn close(mut self) {
        if !self.closed_by_server {
            let mut closer = HttpConnection::new(self.http.connector());
            let poll = self.http.request("GET", &self.session_target, b"");
            let close = closer.request("POST", &self.session_target, b"1");
            let _ = tokio::join!(poll, close);
        }
        self.http.close();
    }

    /// Drops the HTTP connection without closing the session (after an
    /// upgrade, the session lives on over WebSocket).
    pub fn into_handshake(self) -> Handshake {
        self.handshake
    }
}

/// A body as text.
fn text(body: &[u8]) -> Result<&str, ClientError> {
    std::str::from_utf8(body).map_err(|_| ClientError::unexpected("a body that is not UTF-8"))
}
