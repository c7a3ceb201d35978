//! Helpers for the end-to-end tests: start the real `iocluster` binary on a
//! free port and learn its ports from its stdout, talk raw HTTP/1.1,
//! Engine.IO polling and Socket.IO over WebSocket to it, read its `/status`,
//! and signal processes by PID.
//!
//! The clients are deliberately raw: the tests need to choose when a new TCP
//! connection is opened, to send half a request head, or to keep one
//! connection alive across sessions, which no ready-made client allows.
//!
//! Every wait here is bounded: by [`WAIT`] unless a caller passes its own.
#![allow(dead_code)] // each test crate uses its own subset of the helpers

/// The load-balancer tests' shared half (`tests/lb_*.rs`).
pub mod lb;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::MutexGuard;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound of one wait (a response, a packet, a process starting) unless
/// a test says otherwise.
pub const WAIT: Duration = Duration::from_secs(10);

/// How often a bounded loop re-reads state it cannot await (`/status`,
/// `/health`, `/proc`).
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// The Engine.IO path of the built-in app, with the protocol version.
pub const ENGINE_PATH: &str = "/socket.io/?EIO=4";

/// Lines of the master's stderr kept for failure messages.
const LOG_LINES: usize = 300;

/// Awaits `future`, or panics after `limit` naming `what`.
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// `future`'s result, or a `TimedOut` error after `limit`.
pub async fn io_within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no {what} within {limit:?}"),
        )),
    }
}

/// The tests of one crate hold this while their cluster runs: several
/// clusters of three workers on a two-core machine would make the latency
/// and "within N ms" assertions measure each other instead of the cluster.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the other cluster tests of this crate to finish.
pub async fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME.lock().await
}

/// Sends `signal` (`TERM`, `HUP`, `KILL`, ...) to the process `pid`.
///
/// The root package has no libc binding among its dev-dependencies, so this
/// runs `kill(1)`, which signals exactly the numeric PID it is given.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

/// The number of open file descriptors of process `pid`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// A running `iocluster` master, killed (by its PID) when dropped.
pub struct Master {
    child: Child,
    /// The master's PID.
    pub pid: u32,
    /// Where it serves Socket.IO.
    pub addr: SocketAddr,
    /// Its admin endpoint (`/status`).
    pub admin: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Drop for Master {
    fn drop(&mut self) {
        // SIGKILL to the master's PID (a no-op once it has been reaped); its
        // workers die with it (they are started with PR_SET_PDEATHSIG).
        let _ = self.child.start_kill();
    }
}

impl Master {
    /// Starts `iocluster --port 0 --admin 127.0.0.1:0 ARGS` and returns once
    /// it has printed both of its addresses, without waiting for workers.
    pub async fn spawn(args: &[&str]) -> Master {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iocluster"))
            .args(["--port", "0", "--admin", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the iocluster binary starts");
        let pid = child.id().expect("a running child has a pid");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(keep_lines(stderr, Arc::clone(&log), None));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(keep_lines(stdout, Arc::clone(&log), Some(lines_tx)));

        let (mut addr, mut admin) = (None, None);
        let found = tokio::time::timeout(WAIT, async {
            // Workers share the master's stdout and may have written part
            // of a line already: look for the markers anywhere in a line.
            while let Some(line) = lines.recv().await {
                if let Some(rest) = after(&line, "iocluster listening on http://") {
                    addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                } else if let Some(rest) = after(&line, "iocluster admin on http://") {
                    admin = rest
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.strip_suffix("/status"))
                        .and_then(|a| a.parse().ok());
                }
                if addr.is_some() && admin.is_some() {
                    return true;
                }
            }
            false
        })
        .await;
        let master = Master {
            child,
            pid,
            addr: addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            admin: admin.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            log,
        };
        assert!(
            matches!(found, Ok(true)),
            "iocluster did not print its addresses within {WAIT:?}:\n{}",
            master.logs()
        );
        master
    }

    /// Starts a master with `workers` workers and `args`, and returns once
    /// every worker is ready.
    pub async fn start(workers: usize, args: &[&str]) -> Master {
        let workers_arg = workers.to_string();
        let mut all = vec!["--workers", workers_arg.as_str()];
        all.extend_from_slice(args);
        let master = Master::spawn(&all).await;
        master
            .wait_for_status("every worker to be ready", WAIT, |status| {
                let workers_now = status.workers();
                workers_now.len() == workers && workers_now.iter().all(|w| w.ready && !w.draining)
            })
            .await;
        master
    }

    /// The last lines the master (and its workers) wrote, for failure
    /// messages.
    pub fn logs(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Sends `signal` to the master.
    pub fn signal(&self, name: &str) {
        signal(self.pid, name);
    }

    /// The master's exit status, once it exits within `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(error)) => panic!("cannot wait for the master: {error}"),
            Err(_) => panic!("the master did not exit within {limit:?}:\n{}", self.logs()),
        }
    }

    /// Whether the master process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET /health`: its status code.
    pub async fn health(&self) -> io::Result<u16> {
        Ok(http(self.addr, "GET", "/health", b"").await?.status)
    }

    /// `GET /status` from the admin endpoint.
    pub async fn status(&self) -> Status {
        let response = http(self.admin, "GET", "/status", b"")
            .await
            .unwrap_or_else(|error| panic!("GET /status failed: {error}\n{}", self.logs()));
        assert_eq!(response.status, 200, "GET /status: {}", response.text());
        Status(serde_json::from_slice(&response.body).expect("/status is JSON"))
    }

    /// Re-reads `/status` until `condition` holds, or panics after `limit`.
    pub async fn wait_for_status(
        &self,
        what: &str,
        limit: Duration,
        condition: impl Fn(&Status) -> bool,
    ) -> Status {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let status = self.status().await;
            if condition(&status) {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {limit:?} waiting for {what}; last /status: {}\n{}",
                    status.0,
                    self.logs()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The master's open file descriptors.
    pub fn open_fds(&self) -> usize {
        open_fds(self.pid)
    }

    /// The master's open descriptors once the count has held still for a
    /// few reads (connections being torn down settle first).
    pub async fn settled_fds(&self) -> usize {
        let mut last = self.open_fds();
        let mut same = 0;
        within(WAIT, "the master's descriptor count to settle", async {
            while same < 5 {
                tokio::time::sleep(POLL_EVERY).await;
                let now = self.open_fds();
                same = if now == last { same + 1 } else { 0 };
                last = now;
            }
        })
        .await;
        last
    }
}

/// What follows the first `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

/// Copies `reader`'s lines into the last-lines `log`, and to `lines` when
/// given. Ends at EOF.
async fn keep_lines(
    reader: impl AsyncRead + Unpin,
    log: Arc<Mutex<VecDeque<String>>>,
    lines: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) {
    let mut reader = BufReader::new(reader).lines();
    while let Ok(Some(line)) = reader.next_line().await {
        {
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() == LOG_LINES {
                log.pop_front();
            }
            log.push_back(line.clone());
        }
        if let Some(lines) = &lines {
            let _ = lines.send(line);
        }
    }
}

/// The admin endpoint's `/status`.
#[derive(Debug, Clone)]
pub struct Status(pub Value);

/// One worker in `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStatus {
    /// Its slot (0..workers).
    pub slot: u64,
    /// Its process id.
    pub pid: u32,
    /// Whether it takes connections.
    pub ready: bool,
    /// Whether it is being replaced.
    pub draining: bool,
    /// Restarts of its slot.
    pub restarts: u64,
    /// Its live sessions.
    pub sessions: u64,
}

impl Status {
    /// Every worker, in slot order.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        self.0["workers"]
            .as_array()
            .map(|workers| {
                workers
                    .iter()
                    .map(|w| WorkerStatus {
                        slot: w["slot"].as_u64().unwrap_or(u64::MAX),
                        pid: w["pid"].as_u64().unwrap_or(0) as u32,
                        ready: w["ready"].as_bool().unwrap_or(false),
                        draining: w["draining"].as_bool().unwrap_or(false),
                        restarts: w["restarts"].as_u64().unwrap_or(0),
                        sessions: w["sessions"].as_u64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The workers' pids.
    pub fn pids(&self) -> Vec<u32> {
        self.workers().iter().map(|w| w.pid).collect()
    }

    /// Live sessions over every worker.
    pub fn total_sessions(&self) -> u64 {
        self.workers().iter().map(|w| w.sessions).sum()
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// Every value of header `name`, in order (`Set-Cookie` may repeat).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.head.lines().skip(1).filter_map(move |line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }

    /// The body's Engine.IO packets (a polling payload).
    pub fn packets(&self) -> Vec<String> {
        self.text().split('\x1e').map(str::to_owned).collect()
    }

    /// An error unless the status is 200.
    pub fn ok(self) -> io::Result<Response> {
        if self.status == 200 {
            Ok(self)
        } else {
            Err(io::Error::other(format!(
                "HTTP {}: {}",
                self.status,
                self.text()
            )))
        }
    }
}

/// One client TCP connection speaking HTTP/1.1, request after request.
pub struct HttpConnection {
    stream: TcpStream,
    addr: SocketAddr,
    buffer: Vec<u8>,
    /// Whether the response being awaited answers a HEAD (has no body).
    head_only: bool,
}

impl HttpConnection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> io::Result<HttpConnection> {
        let stream = io_within(WAIT, "TCP connection", TcpStream::connect(addr)).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            stream,
            addr,
            buffer: Vec::new(),
            head_only: false,
        })
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
    pub async fn send_with_headers(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        close: bool,
    ) -> io::Result<()> {
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() {
            request.push_str("Content-Type: text/plain;charset=UTF-8\r\n");
        }
        if close {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes).await?;
        self.head_only = method == "HEAD";
        Ok(())
    }

    /// Writes `bytes` as they are (a hand-made or malformed request).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.head_only = false;
        io_within(WAIT, "request write", self.stream.write_all(bytes)).await
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

    /// Reads the next response.
    pub async fn response(&mut self) -> io::Result<Response> {
        io_within(WAIT, "HTTP response", self.read_response()).await
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not an HTTP response: {head:?}")))?;
        let mut response = Response {
            status,
            head,
            body: Vec::new(),
        };
        if self.head_only {
            return Ok(response);
        }
        if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| io::Error::other("bad Content-Length"))?;
            while self.buffer.len() < length {
                self.fill().await?;
            }
            response.body = self.buffer.drain(..length).collect();
        } else if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked().await?;
        } else {
            loop {
                match self.fill().await {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(error) => return Err(error),
                }
            }
            response.body = std::mem::take(&mut self.buffer);
        }
        Ok(response)
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(at) = find(&self.buffer, b"\r\n") {
                    break at;
                }
                self.fill().await?;
            };
            let size_text = String::from_utf8_lossy(&self.buffer[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::other(format!("bad chunk size {size_text:?}")))?;
            self.buffer.drain(..line_end + 2);
            while self.buffer.len() < size + 2 {
                self.fill().await?;
            }
            body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before a whole response",
            ));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// One request on a new TCP connection (`Connection: close`).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> io::Result<Response> {
    let mut connection = HttpConnection::open(addr).await?;
    connection.send(method, target, body, true).await?;
    connection.response().await
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
        for set_cookie in response.header_values("set-cookie") {
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

/// The Socket.IO `welcome` event's worker pid, if `packet` is that event.
pub fn welcome_worker(packet: &str) -> Option<u32> {
    let event: Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    if event[0] != "welcome" {
        return None;
    }
    event[1]["worker"].as_u64()?.try_into().ok()
}

/// The recovery offset of an EVENT packet `42[...,"<offset>"]`: its last
/// argument, when connection state recovery is on.
pub fn event_offset(packet: &str) -> Option<String> {
    let event: Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    let args = event.as_array()?;
    if args.len() < 2 {
        return None;
    }
    args.last()?.as_str().map(str::to_owned)
}

/// The socket id of a Socket.IO CONNECT packet `40{"sid":...}` on the main
/// namespace, if `packet` is one.
pub fn connect_packet_sid(packet: &str) -> Option<String> {
    let connect: Value = serde_json::from_str(packet.strip_prefix("40")?).ok()?;
    connect["sid"].as_str().map(str::to_owned)
}

/// The event packet acknowledged by `ack`: `42<ack>["echo",<text>]`.
pub fn echo_packet(ack: u64, text: &str) -> String {
    format!("42{ack}{}", serde_json::json!(["echo", text]))
}

/// The ack of [`echo_packet`]: `43<ack>[<text>]`.
pub fn echo_ack(ack: u64, text: &str) -> String {
    format!("43{ack}{}", serde_json::json!([text]))
}

/// An Engine.IO session over HTTP long-polling. Each request opens a new
/// TCP connection, as browsers often do, so each is routed by the master.
/// Like a browser it sends back the cookies it was given (a cookie-sticky
/// load balancer's, the `io` cookie).
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
        let sid = open_packet_sid(&response.text())?;
        Ok(PollingSession { addr, sid, cookies })
    }

    /// The handshake on an open (kept-alive) `connection`.
    pub async fn open_on(connection: &mut HttpConnection) -> io::Result<PollingSession> {
        let response = connection
            .request("GET", &handshake_target(), b"")
            .await?
            .ok()?;
        let sid = open_packet_sid(&response.text())?;
        Ok(PollingSession {
            addr: connection.addr,
            sid,
            cookies: CookieJar::default(),
        })
    }

    /// The request target of this session.
    pub fn target(&self) -> String {
        format!("{ENGINE_PATH}&transport=polling&sid={}", self.sid)
    }

    /// POSTs `packets` as one payload.
    pub async fn post(&self, packets: &[&str]) -> io::Result<()> {
        let body = packets.join("\x1e");
        let response = self.request("POST", body.as_bytes()).await?.ok()?;
        if response.text() != "ok" {
            return Err(io::Error::other(format!(
                "POST answered {:?}",
                response.text()
            )));
        }
        Ok(())
    }

    /// One GET: the packets it returns.
    pub async fn get(&self) -> io::Result<Vec<String>> {
        Ok(self.request("GET", b"").await?.ok()?.packets())
    }

    /// One request of this session on a new TCP connection, with its
    /// cookies.
    async fn request(&self, method: &str, body: &[u8]) -> io::Result<Response> {
        http_with_cookies(self.addr, method, &self.target(), body, &self.cookies).await
    }

    /// POSTs `packets` on an open (kept-alive) `connection`.
    pub async fn post_on(
        &self,
        connection: &mut HttpConnection,
        packets: &[&str],
    ) -> io::Result<()> {
        let body = packets.join("\x1e");
        let response = connection
            .request("POST", &self.target(), body.as_bytes())
            .await?
            .ok()?;
        if response.text() != "ok" {
            return Err(io::Error::other(format!(
                "POST answered {:?}",
                response.text()
            )));
        }
        Ok(())
    }

    /// GETs on an open (kept-alive) `connection` until a packet satisfies
    /// `wanted`, and returns it.
    pub async fn get_on_until(
        &self,
        connection: &mut HttpConnection,
        wanted: impl Fn(&str) -> bool,
    ) -> io::Result<String> {
        io_within(WAIT, "the expected polling packet", async {
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

    /// GETs until a packet satisfies `wanted` and returns it; answers
    /// pings, fails on a close packet.
    pub async fn get_until(&self, wanted: impl Fn(&str) -> bool) -> io::Result<String> {
        io_within(WAIT, "the expected polling packet", async {
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
}

/// The polling handshake's request target.
pub fn handshake_target() -> String {
    format!("{ENGINE_PATH}&transport=polling")
}

/// Opens `count` Engine.IO sessions over polling, `concurrency` at a time;
/// panics if one fails.
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

/// The `sid` of an Engine.IO open packet `0{...}`.
pub fn open_packet_sid(text: &str) -> io::Result<String> {
    let open = text
        .strip_prefix('0')
        .ok_or_else(|| io::Error::other(format!("not an open packet: {text:?}")))?;
    let handshake: Value = serde_json::from_str(open).map_err(io::Error::other)?;
    handshake["sid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("no sid in {text:?}")))
}

/// A Socket.IO client on the main namespace over polling.
#[derive(Debug, Clone)]
pub struct PollingClient {
    /// Its Engine.IO session.
    pub session: PollingSession,
    /// The pid of the worker serving it (from `welcome`).
    pub worker: u32,
}

impl PollingClient {
    /// Handshake, `40`, then GETs until the CONNECT and `welcome`.
    pub async fn connect(addr: SocketAddr) -> io::Result<PollingClient> {
        let session = PollingSession::open(addr).await?;
        session.post(&["40"]).await?;
        let mut connected = false;
        let mut worker = None;
        io_within(WAIT, "CONNECT and welcome over polling", async {
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
        Ok(PollingClient {
            session,
            worker: worker.unwrap_or(0),
        })
    }

    /// Emits `echo(text)` with ack id `ack` and waits for the ack.
    pub async fn echo(&self, ack: u64, text: &str) -> io::Result<()> {
        self.session.post(&[&echo_packet(ack, text)]).await?;
        let expected = echo_ack(ack, text);
        self.session.get_until(|p| p == expected).await.map(drop)
    }

    /// Closes the session (`1`).
    pub async fn close(&self) -> io::Result<()> {
        self.session.post(&["1"]).await
    }
}

/// How a WebSocket connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEnd {
    /// A close frame arrived, after these Engine.IO packets.
    CloseFrame(Vec<String>),
    /// The connection ended without a close frame, after these packets.
    Eof(Vec<String>),
}

/// A Socket.IO client on the main namespace over a WebSocket (no polling
/// first): raw Engine.IO packets over tokio-tungstenite.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The Socket.IO socket id.
    pub id: String,
    /// The pid of the worker serving it (from `welcome`).
    pub worker: u32,
    /// The connection-state-recovery id from the CONNECT packet, if any.
    pub recovery_pid: Option<String>,
    /// The recovery offset of the last event received, if any.
    pub offset: Option<String>,
}

impl WsClient {
    /// Opens the WebSocket and reads the Engine.IO open packet `0{...}`;
    /// not yet connected to a namespace.
    pub async fn open(addr: SocketAddr) -> io::Result<WsClient> {
        let url = format!("ws://{addr}{ENGINE_PATH}&transport=websocket");
        let (ws, _) = io_within(WAIT, "WebSocket handshake", async {
            tokio_tungstenite::connect_async(url)
                .await
                .map_err(io::Error::other)
        })
        .await?;
        let mut client = WsClient {
            ws,
            id: String::new(),
            worker: 0,
            recovery_pid: None,
            offset: None,
        };
        let open = client.next_packet().await?;
        open_packet_sid(&open)?;
        Ok(client)
    }

    /// Opens the WebSocket, sends `40`, reads the CONNECT and `welcome`.
    pub async fn connect(addr: SocketAddr) -> io::Result<WsClient> {
        let mut client = WsClient::open(addr).await?;
        client.join("40").await?;
        Ok(client)
    }

    /// Connects asking to recover the socket `recovery_pid` from `offset`
    /// (as socket.io-client does when it reconnects).
    pub async fn connect_recovering(
        addr: SocketAddr,
        recovery_pid: &str,
        offset: &str,
    ) -> io::Result<WsClient> {
        let mut client = WsClient::open(addr).await?;
        let auth = serde_json::json!({ "pid": recovery_pid, "offset": offset });
        client.join(&format!("40{auth}")).await?;
        Ok(client)
    }

    /// Sends `connect` (a CONNECT packet) and reads the CONNECT answer and
    /// the `welcome` event.
    async fn join(&mut self, connect: &str) -> io::Result<()> {
        self.connect_namespace(connect).await?;
        self.worker = self.read_welcome().await?;
        Ok(())
    }

    /// Sends `connect` (a CONNECT packet) and reads until the CONNECT
    /// answer: sets the socket id and the recovery pid.
    pub async fn connect_namespace(&mut self, connect: &str) -> io::Result<()> {
        self.send(connect).await?;
        loop {
            let packet = self.next_packet().await?;
            if let Some(id) = connect_packet_sid(&packet) {
                let answer: Value = serde_json::from_str(&packet[2..]).unwrap_or_default();
                self.id = id;
                self.recovery_pid = answer["pid"].as_str().map(str::to_owned);
                return Ok(());
            }
            if packet.starts_with("44") {
                return Err(io::Error::other(format!("connect refused: {packet}")));
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

    /// Sends one Engine.IO packet as a text frame.
    pub async fn send(&mut self, packet: &str) -> io::Result<()> {
        io_within(WAIT, "WebSocket send", async {
            self.ws
                .send(Message::text(packet))
                .await
                .map_err(io::Error::other)
        })
        .await
    }

    /// The next Engine.IO packet, answering pings; an error if the
    /// connection closes first or nothing comes within [`WAIT`].
    pub async fn next_packet(&mut self) -> io::Result<String> {
        io_within(WAIT, "WebSocket packet", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                        self.ws
                            .send(Message::text("3"))
                            .await
                            .map_err(io::Error::other)?;
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Some(offset) = event_offset(text.as_str()) {
                            self.offset = Some(offset);
                        }
                        return Ok(text.as_str().to_owned());
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!("WebSocket closed by the server: {frame:?}"),
                        ));
                    }
                    Some(Ok(_)) => {}
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
        })
        .await
    }

    /// Emits `echo(text)` with ack id `ack` and waits for the ack.
    pub async fn echo(&mut self, ack: u64, text: &str) -> io::Result<()> {
        self.send(&echo_packet(ack, text)).await?;
        let expected = echo_ack(ack, text);
        loop {
            if self.next_packet().await? == expected {
                return Ok(());
            }
        }
    }

    /// Reads until the connection ends, within `limit`: how it ended and
    /// the Engine.IO packets that came before.
    pub async fn ended(&mut self, limit: Duration) -> io::Result<WsEnd> {
        io_within(limit, "the WebSocket to end", async {
            let mut packets = Vec::new();
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => packets.push(text.as_str().to_owned()),
                    Some(Ok(Message::Close(_))) => return Ok(WsEnd::CloseFrame(packets)),
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ok(WsEnd::Eof(packets)),
                }
            }
        })
        .await
    }

    /// Closes the WebSocket (a close frame; errors ignored).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(WAIT, self.ws.close(None)).await;
    }
}

// ---------------------------------------------------------------------------
// Redis fleets: a redis-server of the test's own and the Node peer
// ---------------------------------------------------------------------------

/// A `redis-server` of this test on 127.0.0.1 (nothing saved), killed by
/// its PID when dropped; it can be killed and started again on the same
/// port.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free loopback port (never 6379).
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        RedisServer::start_on(port).await
    }

    /// Starts one on `port`; returns once it accepts connections.
    pub async fn start_on(port: u16) -> RedisServer {
        let mut server = RedisServer { port, child: None };
        server.restart().await;
        server
    }

    /// Starts it (again) on its port, if it is not running.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            return;
        }
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        within(WAIT, "redis-server to accept connections", async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return;
                }
            }
            panic!(
                "redis-server exited before it was ready (port {} taken?)",
                self.port
            );
        })
        .await;
        // Keep reading its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL to its PID) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = within(WAIT, "redis-server to exit", child.wait()).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
    }
}

/// One line the Node peer reported (`{"event": …}`), and when it was read.
#[derive(Debug, Clone)]
pub struct PeerEvent {
    /// When the test read it.
    pub at: std::time::Instant,
    /// The line.
    pub value: Value,
}

#[derive(Default)]
struct PeerState {
    replies: std::collections::HashMap<u64, tokio::sync::oneshot::Sender<Result<Value, String>>>,
    events: Vec<PeerEvent>,
}

/// The Node peer `tests/js/redis/peer.js`: a socket.io 4.8 server with
/// @socket.io/redis-adapter, socket.io-client sockets to any server, and
/// @socket.io/redis-emitter, driven by one JSON command per line; killed
/// by its PID when dropped. (crates/redis has the same peer for its
/// interop tests; this is the root tests' handle on it.)
pub struct NodePeer {
    /// The port of its socket.io server.
    pub port: u16,
    child: Child,
    stdin: tokio::process::ChildStdin,
    state: Arc<Mutex<PeerState>>,
    changed: Arc<tokio::sync::Notify>,
    next_id: u64,
}

impl NodePeer {
    /// Starts the peer on the Redis at `redis_port`; returns once its
    /// adapter is subscribed. Runs `npm ci` first if its packages are
    /// missing.
    pub async fn start(redis_port: u16) -> NodePeer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/redis");
        if !dir.join("node_modules/.package-lock.json").exists() {
            let status = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .stdout(Stdio::null())
                .status()
                .expect("npm is installed");
            assert!(status.success(), "npm ci in {} failed", dir.display());
        }
        let mut child = Command::new("node")
            .arg(dir.join("peer.js"))
            .arg(redis_port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node is installed");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let state = Arc::new(Mutex::new(PeerState::default()));
        let changed = Arc::new(tokio::sync::Notify::new());
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (reader_state, reader_changed) = (Arc::clone(&state), Arc::clone(&changed));
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let at = std::time::Instant::now();
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let mut state = reader_state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(port) = value["ready"]["port"].as_u64() {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(port as u16);
                    }
                } else if let Some(id) = value["id"].as_u64() {
                    let reply = match value.get("error") {
                        Some(error) => Err(error.to_string()),
                        None => Ok(value["result"].clone()),
                    };
                    if let Some(waiter) = state.replies.remove(&id) {
                        let _ = waiter.send(reply);
                    }
                } else {
                    state.events.push(PeerEvent { at, value });
                    drop(state);
                    reader_changed.notify_waiters();
                }
            }
        });
        let port = within(WAIT, "the Node peer to be ready", ready_rx)
            .await
            .expect("the Node peer exited before it was ready");
        NodePeer {
            port,
            child,
            stdin,
            state,
            changed,
            next_id: 1,
        }
    }

    /// The URL of its socket.io server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs a command (`{"cmd": …, …}`) that must succeed; its result.
    pub async fn ok(&mut self, mut command: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = Value::from(id);
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replies
            .insert(id, tx);
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the Node peer");
        match within(WAIT, &format!("the Node peer to answer {command}"), rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => panic!("Node peer command {command} failed: {error}"),
            Err(_) => panic!("the Node peer exited during {command}"),
        }
    }

    /// Connects a socket.io-client socket named `name` to `url` (WebSocket
    /// only); its socket id.
    pub async fn connect(&mut self, name: &str, url: &str) -> String {
        let result = self
            .ok(serde_json::json!({"cmd": "connect", "name": name, "url": url}))
            .await;
        result["id"].as_str().expect("a socket id").to_owned()
    }

    /// Client `name` emits `ev(args…)` and waits for the ack; its value.
    pub async fn client_emit(&mut self, name: &str, ev: &str, args: Value) -> Value {
        self.ok(
            serde_json::json!({"cmd": "clientEmitWithAck", "name": name, "ev": ev, "args": args}),
        )
        .await
    }

    /// Every event reported so far, in order.
    pub fn events(&self) -> Vec<PeerEvent> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }

    /// The events client `name` received, `(event name, arguments)`, in
    /// order.
    pub fn received(&self, name: &str) -> Vec<(String, Value)> {
        self.events()
            .into_iter()
            .filter(|e| e.value["event"] == "client" && e.value["name"] == name)
            .map(|e| {
                let ev = e.value["ev"].as_str().unwrap_or_default().to_owned();
                (ev, e.value["args"].clone())
            })
            .collect()
    }

    /// Waits (up to `limit`) until client `name` received `ev` with
    /// arguments `args`.
    pub async fn wait_for(&self, limit: Duration, name: &str, ev: &str, args: &Value) {
        let what = format!("client {name} to receive {ev}{args}");
        within(limit, &what, async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self
                    .received(name)
                    .iter()
                    .any(|(e, a)| e == ev && a == args)
                {
                    return;
                }
                changed.await;
            }
        })
        .await
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
