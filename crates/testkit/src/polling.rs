//! Engine.IO sessions and Socket.IO clients over HTTP long-polling. Each
//! request opens a new TCP connection, as browsers often do (so each is
//! routed anew by a master or a load balancer), unless a test hands one
//! kept-alive [`HttpConnection`] to the `_on` methods. Like a browser, a
//! session sends back the cookies it was given.

use std::io;
use std::net::SocketAddr;

use futures_util::StreamExt;

use crate::http::Response;
use crate::http_connection::{CookieJar, HttpConnection, http_with_cookies};
use crate::packets::{
    ENGINE_PATH, connect_answer, connect_packet_sid, echo_ack, echo_packet, handshake_target,
    open_packet_sid, welcome_worker,
};
use crate::wait::{WAIT, try_within};

/// An Engine.IO session over HTTP long-polling.
#[derive(Debug, Clone)]
pub struct PollingSession {
    addr: SocketAddr,
    /// The Engine.IO session id.
    pub sid: String,
    /// The cookies set by the server (or a load balancer in front of it).
    pub cookies: CookieJar,
}

impl PollingSession {
    /// The handshake: `GET ?EIO=4&transport=polling`.
    pub async fn open(addr: SocketAddr) -> io::Result<PollingSession> {
        let cookies = CookieJar::default();
        let response = http_with_cookies(addr, "GET", &handshake_target(), b"", &cookies)
            .await?
            .ok()?;
        let sid = open_packet_sid(response.text())?;
        Ok(PollingSession { addr, sid, cookies })
    }

    /// The handshake on an open (kept-alive) `connection`.
    pub async fn open_on(connection: &mut HttpConnection) -> io::Result<PollingSession> {
        let response = connection
            .request("GET", &handshake_target(), b"")
            .await?
            .ok()?;
        let sid = open_packet_sid(response.text())?;
        Ok(PollingSession {
            addr: connection.addr(),
            sid,
            cookies: CookieJar::default(),
        })
    }

    /// The same session, its requests sent to `addr` instead (another
    /// node of a fleet that forwards sessions, say).
    pub fn via(&self, addr: SocketAddr) -> PollingSession {
        PollingSession {
            addr,
            ..self.clone()
        }
    }

    /// The request target of this session.
    pub fn target(&self) -> String {
        format!("{ENGINE_PATH}&transport=polling&sid={}", self.sid)
    }

    /// One request of this session on a new TCP connection, with its
    /// cookies; the response whatever its status.
    pub async fn request(&self, method: &str, body: &[u8]) -> io::Result<Response> {
        http_with_cookies(self.addr, method, &self.target(), body, &self.cookies).await
    }

    /// POSTs `packets` as one payload, which must be answered `ok`.
    pub async fn post(&self, packets: &[&str]) -> io::Result<()> {
        let body = packets.join("\x1e");
        expect_ok(self.request("POST", body.as_bytes()).await?)
    }

    /// One GET: the packets it returns.
    pub async fn get(&self) -> io::Result<Vec<String>> {
        Ok(self.request("GET", b"").await?.ok()?.packets())
    }

    /// GETs until a packet satisfies `wanted` and returns it; answers
    /// pings, fails on a close packet or after [`WAIT`].
    pub async fn get_until(&self, wanted: impl Fn(&str) -> bool) -> io::Result<String> {
        try_within(WAIT, "the expected polling packet", async {
            loop {
                for packet in self.get().await? {
                    if wanted(&packet) {
                        return Ok(packet);
                    }
                    match packet.as_str() {
                        "2" => self.post(&["3"]).await?,
                        "1" => return Err(io::Error::other("session closed by the server")),
                        _ => {}
                    }
                }
            }
        })
        .await
    }

    /// POSTs `packets` on an open (kept-alive) `connection`.
    pub async fn post_on(
        &self,
        connection: &mut HttpConnection,
        packets: &[&str],
    ) -> io::Result<()> {
        let body = packets.join("\x1e");
        expect_ok(
            connection
                .request("POST", &self.target(), body.as_bytes())
                .await?,
        )
    }

    /// GETs on an open (kept-alive) `connection` until a packet satisfies
    /// `wanted`, and returns it.
    pub async fn get_on_until(
        &self,
        connection: &mut HttpConnection,
        wanted: impl Fn(&str) -> bool,
    ) -> io::Result<String> {
        try_within(WAIT, "the expected polling packet", async {
            loop {
                let response = connection.request("GET", &self.target(), b"").await?.ok()?;
                for packet in response.packets() {
                    if wanted(&packet) {
                        return Ok(packet);
                    }
                    if packet == "1" {
                        return Err(io::Error::other("session closed by the server"));
                    }
                }
            }
        })
        .await
    }
}

/// An error unless `response` is the `200 ok` that answers a POST.
fn expect_ok(response: Response) -> io::Result<()> {
    let response = response.ok()?;
    if response.text() != "ok" {
        return Err(io::Error::other(format!(
            "POST answered {:?}",
            response.text()
        )));
    }
    Ok(())
}

/// Opens `count` Engine.IO sessions over polling, `concurrency` at a time;
/// fails the test if one fails.
pub async fn open_sessions(
    addr: SocketAddr,
    count: usize,
    concurrency: usize,
) -> Vec<PollingSession> {
    futures_util::stream::iter(0..count)
        .map(|_| PollingSession::open(addr))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<io::Result<Vec<_>>>()
        .expect("every polling handshake succeeds")
}

/// A Socket.IO client of the main namespace over polling.
#[derive(Debug, Clone)]
pub struct PollingClient {
    /// Its Engine.IO session.
    pub session: PollingSession,
    /// The pid of the worker serving it (from the `iocluster` app's
    /// `welcome`; 0 for other servers).
    pub worker: u32,
    next_ack: u64,
}

impl PollingClient {
    /// Opens an Engine.IO session; no namespace joined yet.
    pub async fn open(addr: SocketAddr) -> io::Result<PollingClient> {
        Ok(PollingClient {
            session: PollingSession::open(addr).await?,
            worker: 0,
            next_ack: 1,
        })
    }

    /// Connects to an `iocluster` app: handshake, `40`, then GETs until the
    /// CONNECT answer and the `welcome` event.
    pub async fn connect(addr: SocketAddr) -> io::Result<PollingClient> {
        let mut client = PollingClient::open(addr).await?;
        let session = &client.session;
        session.post(&["40"]).await?;
        let mut connected = false;
        let mut worker = None;
        try_within(WAIT, "CONNECT and welcome over polling", async {
            while !(connected && worker.is_some()) {
                for packet in session.get().await? {
                    if connect_packet_sid(&packet).is_some() {
                        connected = true;
                    } else if let Some(pid) = welcome_worker(&packet) {
                        worker = Some(pid);
                    } else if packet.starts_with("44") || packet == "1" {
                        return Err(io::Error::other(format!("connect refused: {packet}")));
                    }
                }
            }
            Ok(())
        })
        .await?;
        client.worker = worker.unwrap_or(0);
        Ok(client)
    }

    /// Joins the main namespace: the next GET must bring the CONNECT
    /// answer alone. Returns the socket id.
    pub async fn join_main(&mut self) -> String {
        self.send("40").await;
        let packets = self.poll().await;
        assert_eq!(packets.len(), 1, "CONNECT answer: {packets:?}");
        connect_answer("/", &packets[0])["sid"]
            .as_str()
            .expect("socket id")
            .to_owned()
    }

    /// POSTs `payload` as it is; it must be answered `ok`.
    pub async fn send(&self, payload: &str) {
        self.session
            .post(&[payload])
            .await
            .unwrap_or_else(|e| panic!("POST {payload:?}: {e}"));
    }

    /// One GET that must succeed: its packets, pings answered and left
    /// out. Only call it when something is due: an idle session holds a
    /// GET until the next ping.
    pub async fn poll(&self) -> Vec<String> {
        let response = self.get_response().await;
        assert_eq!(response.status, 200, "GET: {}", response.text());
        let mut packets = Vec::new();
        for packet in response.packets() {
            if packet == "2" {
                self.send("3").await;
            } else {
                packets.push(packet);
            }
        }
        packets
    }

    /// Emits `echo(text)` with ack id `ack` and GETs until the ack.
    pub async fn echo(&self, ack: u64, text: &str) -> io::Result<()> {
        self.session.post(&[&echo_packet(ack, text)]).await?;
        let expected = echo_ack(ack, text);
        self.session.get_until(|p| p == expected).await.map(drop)
    }

    /// Emits `echo(text)` with the next ack id; the next GET must bring the
    /// ack alone.
    pub async fn assert_echo(&mut self, text: &str) {
        let ack = self.next_ack;
        self.next_ack += 1;
        self.send(&echo_packet(ack, text)).await;
        assert_eq!(self.poll().await, vec![echo_ack(ack, text)], "echo ack");
    }

    /// Waits for the Engine.IO close packet: the GETs up to it must hold
    /// nothing else. Then checks that the session is unknown.
    pub async fn assert_closed_by_server(&self) {
        let packets = self.poll().await;
        assert_eq!(packets, vec!["1".to_owned()], "the close packet alone");
        let after = self.get_response().await;
        assert_eq!(after.status, 400, "GET after close: {}", after.text());
        let error = after.json();
        assert_eq!(error["code"], 1, "Session ID unknown: {error}");
    }

    /// One GET's response, whatever its status; fails the test if none
    /// comes.
    async fn get_response(&self) -> Response {
        self.session
            .request("GET", b"")
            .await
            .expect("a GET answer")
    }

    /// Closes the session (`1`).
    pub async fn close(&self) -> io::Result<()> {
        self.session.post(&["1"]).await
    }
}
