//! One client TCP connection speaking HTTP/1.1, request after request, and
//! the cookies a browser would send back.
//!
//! Deliberately raw: tests choose when a new TCP connection is opened, send
//! half a request head or garbage, and keep one connection alive across
//! sessions, which no ready-made client allows.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{Response, http_request, parse_response};
use crate::wait::{WAIT, try_within, within};

/// One client TCP connection speaking HTTP/1.1. Every read and write is
/// bounded by [`WAIT`].
///
/// ```no_run
/// # async fn example(addr: std::net::SocketAddr) -> std::io::Result<()> {
/// use iocluster_testkit::HttpConnection;
/// let mut connection = HttpConnection::open(addr).await?;
/// let health = connection.request("GET", "/health", b"").await?;
/// assert_eq!(health.status, 200);
/// connection.send_raw(b"\x00garbage\r\n\r\n").await?;
/// assert_eq!(connection.response().await?.status, 400);
/// # Ok(()) }
/// ```
pub struct HttpConnection {
    stream: TcpStream,
    addr: SocketAddr,
    buffer: Vec<u8>,
    eof: bool,
    /// Whether the response being awaited answers a HEAD (has no body).
    head_only: bool,
}

impl HttpConnection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> io::Result<HttpConnection> {
        let stream = try_within(WAIT, "TCP connection", TcpStream::connect(addr)).await?;
        HttpConnection::from_stream(stream)
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream) -> io::Result<HttpConnection> {
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            addr: stream.peer_addr()?,
            stream,
            buffer: Vec::new(),
            eof: false,
            head_only: false,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes a request without waiting for its response; `close` asks the
    /// server to close the connection after it.
    pub async fn send(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        self.send_with_headers(method, target, &[], body, close)
            .await
    }

    /// [`send`](Self::send) with extra `headers` (`Cookie`, `Origin`, ...).
    /// The request names the server's address as its `Host`, and a body as
    /// `text/plain`, as a browser's XHR does.
    pub async fn send_with_headers(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        let host = self.addr.to_string();
        let mut all = vec![("Host", host.as_str())];
        all.extend_from_slice(headers);
        if !body.is_empty() {
            all.push(("Content-Type", "text/plain;charset=UTF-8"));
        }
        if close {
            all.push(("Connection", "close"));
        }
        self.send_raw(&http_request(method, target, &all, body))
            .await?;
        self.head_only = method == "HEAD";
        Ok(())
    }

    /// Writes `bytes` as they are (a hand-made or malformed request).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.head_only = false;
        try_within(WAIT, "request write", self.stream.write_all(bytes)).await
    }

    /// [`send_raw`](Self::send_raw), failing the test on error.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.send_raw(bytes).await.expect("write a request");
    }

    /// Sends a request and reads its response, keeping the connection.
    pub async fn request(
        &mut self,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> io::Result<Response> {
        self.send(method, target, body, false).await?;
        self.response().await
    }

    /// Reads the next response. Cancel-safe: what was read stays buffered.
    pub async fn response(&mut self) -> io::Result<Response> {
        try_within(WAIT, "HTTP response", self.read_response_unbounded()).await
    }

    /// [`response`](Self::response), failing the test on error.
    pub async fn read_response(&mut self) -> Response {
        self.response().await.expect("read an HTTP response")
    }

    async fn read_response_unbounded(&mut self) -> io::Result<Response> {
        loop {
            match parse_response(&self.buffer, self.eof, self.head_only) {
                Ok(Some((response, used))) => {
                    self.buffer.drain(..used);
                    return Ok(response);
                }
                Ok(None) => {}
                Err(message) => return Err(io::Error::new(io::ErrorKind::InvalidData, message)),
            }
            if self.eof {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a whole response",
                ));
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                self.eof = true;
            }
        }
    }

    /// True when no byte arrives within `window`: the bounded wait that
    /// shows a request is still pending.
    pub async fn receives_nothing_within(&self, window: Duration) -> bool {
        if !self.buffer.is_empty() {
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
        within(WAIT, "the server to close the connection", async {
            while !self.eof {
                match self.stream.read_buf(&mut self.buffer).await {
                    Ok(0) | Err(_) => self.eof = true,
                    Ok(_) => {}
                }
            }
        })
        .await;
        std::mem::take(&mut self.buffer)
    }

    /// The stream and the bytes read past the last response.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buffer)
    }
}

/// One request on a new TCP connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> io::Result<Response> {
    http_with_cookies(addr, method, target, body, &CookieJar::default()).await
}

/// [`http`] sending `jar`'s cookies, and keeping the ones the response sets.
pub async fn http_with_cookies(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
    jar: &CookieJar,
) -> io::Result<Response> {
    let mut connection = HttpConnection::open(addr).await?;
    let cookie = jar.header();
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    connection
        .send_with_headers(method, target, &headers, body, true)
        .await?;
    let response = connection.response().await?;
    jar.store(&response);
    Ok(response)
}

/// The cookies servers set, sent back on every request as a browser does
/// (the tests talk to one host and path, so names are the only key).
/// Clones share one jar.
#[derive(Debug, Clone, Default)]
pub struct CookieJar(Arc<Mutex<Vec<(String, String)>>>);

impl CookieJar {
    /// Keeps the name and value of every `Set-Cookie` of `response`
    /// (attributes are ignored), replacing cookies of the same name.
    pub fn store(&self, response: &Response) {
        let mut cookies = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for set_cookie in response.header_all("set-cookie") {
            let pair = set_cookie.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            cookies.retain(|(kept, _)| *kept != name);
            cookies.push((name, value));
        }
    }

    /// The `Cookie` header for the next request, if any cookie is kept.
    pub fn header(&self) -> Option<String> {
        let cookies = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The value of cookie `name`, if kept.
    pub fn get(&self, name: &str) -> Option<String> {
        let cookies = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cookies
            .iter()
            .find(|(kept, _)| kept == name)
            .map(|(_, value)| value.clone())
    }
}
