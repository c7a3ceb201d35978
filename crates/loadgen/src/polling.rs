//! The Engine.IO long-polling transport, client side: one kept-alive HTTP
//! connection per session, one request at a time (POST to send, GET to
//! receive). Pings found in a GET are answered with a POST of `3`.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::ClientError;
use crate::http::{HttpConnection, Response};
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
        expect_ok(response)
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

    /// Closes the session as socket.io-client 4 does on `socket.close()`:
    /// while a GET is pending on the session's connection (a client always
    /// has one), a second connection POSTs the Socket.IO DISCONNECT (`41`)
    /// and, once that is answered, the Engine.IO close (`1`): two POSTs,
    /// because engine.io-client sends the close only when the DISCONNECT
    /// has drained. The server then answers the pending GET (a noop). Both
    /// POSTs must be answered `200 ok` and the GET `200`; each request is
    /// bounded by the timeout, and the session is gone either way.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if self.closed_by_server {
            self.http.close();
            return Ok(());
        }
        let mut closer = HttpConnection::new(self.http.connector());
        let target = self.session_target.clone();
        let poll = self.http.request("GET", &self.session_target, b"");
        let close = async {
            expect_ok(closer.request("POST", &target, b"41").await?)?;
            expect_ok(closer.request("POST", &target, b"1").await?)
        };
        let (poll, close) = tokio::join!(poll, close);
        self.http.close();
        close?;
        let poll = poll?;
        if poll.status != 200 {
            return Err(ClientError::http(poll.status, &poll.body));
        }
        Ok(())
    }

    /// Drops the HTTP connection without closing the session (after an
    /// upgrade, the session lives on over WebSocket).
    pub fn into_handshake(self) -> Handshake {
        self.handshake
    }
}

/// A POST's answer: `200 ok`, or the error it is.
fn expect_ok(response: Response) -> Result<(), ClientError> {
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

/// A body as text.
fn text(body: &[u8]) -> Result<&str, ClientError> {
    std::str::from_utf8(body).map_err(|_| ClientError::unexpected("a body that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Notify;

    use super::*;
    use crate::net::Connector;

    /// How long the fake server holds a GET when no close comes.
    const HOLD: Duration = Duration::from_millis(300);

    /// What the fake server saw: (connection, method, body) of each request
    /// of the session (the handshake left out).
    #[derive(Default)]
    struct Seen {
        requests: Mutex<Vec<(usize, String, String)>>,
        closed: Notify,
    }

    impl Seen {
        fn requests(&self) -> Vec<(usize, String, String)> {
            self.requests.lock().unwrap().clone()
        }
    }

    /// A fake Engine.IO server with one session: a POST is answered with
    /// `post_status` (and `ok`), a GET of the session is held until the
    /// close packet `1` arrives (at most [`HOLD`]) and answered with a noop.
    async fn fake_server(post_status: u16) -> (SocketAddr, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            for connection in 0.. {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(socket, connection, post_status, Arc::clone(&shared)));
            }
        });
        (addr, seen)
    }

    async fn serve(mut socket: TcpStream, connection: usize, post_status: u16, seen: Arc<Seen>) {
        let mut buffer = Vec::new();
        while let Some((method, target, body)) = read_request(&mut socket, &mut buffer).await {
            let answer = if !target.contains("sid=") {
                r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
                    .to_owned()
            } else if method == "GET" {
                seen.requests
                    .lock()
                    .unwrap()
                    .push((connection, method, body));
                let _ = tokio::time::timeout(HOLD, seen.closed.notified()).await;
                "6".to_owned()
            } else {
                if body == "1" {
                    seen.closed.notify_one();
                }
                seen.requests
                    .lock()
                    .unwrap()
                    .push((connection, method, body));
                "ok".to_owned()
            };
            let status = if answer == "ok" { post_status } else { 200 };
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    }

    /// One request: method, target and body; `None` at the end.
    async fn read_request(
        socket: &mut TcpStream,
        buffer: &mut Vec<u8>,
    ) -> Option<(String, String, String)> {
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |n| n.parse().unwrap());
                if buffer.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&buffer[end + 4..end + 4 + length]);
                    let body = body.into_owned();
                    buffer.drain(..end + 4 + length);
                    let mut words = head.split(' ');
                    let method = words.next().unwrap().to_owned();
                    let target = words.next().unwrap().to_owned();
                    return Some((method, target, body));
                }
            }
            let mut chunk = [0u8; 1024];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn open_session(addr: SocketAddr) -> PollingTransport {
        let target = Target::parse(&format!("http://{addr}")).unwrap();
        let connector = Arc::new(Connector::new(addr, 1, Duration::from_secs(2)));
        PollingTransport::open(connector, &target).await.unwrap()
    }

    #[tokio::test]
    async fn close_posts_disconnect_then_close_while_a_get_is_pending() {
        let (addr, seen) = fake_server(200).await;
        let session = open_session(addr).await;
        session.close().await.unwrap();
        let requests = seen.requests();
        let posts: Vec<_> = requests.iter().filter(|r| r.1 == "POST").collect();
        let gets: Vec<_> = requests.iter().filter(|r| r.1 == "GET").collect();
        // The GET on the session's connection, the POSTs on a second one,
        // in socket.io-client's order: DISCONNECT, then the close.
        assert_eq!(gets, [&(0, "GET".to_owned(), String::new())]);
        assert_eq!(
            posts,
            [
                &(1, "POST".to_owned(), "41".to_owned()),
                &(1, "POST".to_owned(), "1".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn close_refused_by_the_server_is_an_error() {
        let (addr, seen) = fake_server(400).await;
        let session = open_session(addr).await;
        let error = session.close().await.unwrap_err();
        assert!(matches!(error, ClientError::HttpStatus { status: 400, .. }));
        // The close packet is not sent after a refused DISCONNECT.
        assert!(!seen.requests().iter().any(|r| r.2 == "1"));
    }
}
