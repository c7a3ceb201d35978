//! Smoke runs of every scenario against the real `iocluster` binary (the
//! debug build, with 2 workers and fast pings): tiny counts, about a second
//! each, zero protocol errors and non-zero throughput expected.
//!
//! The server binary is not a dependency of this crate: build it first
//! (`cargo build`, which CI does before `cargo test`).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iocluster_loadgen::scenario::echo::{self, EchoOptions};
use iocluster_loadgen::scenario::fanout::{self, FanoutOptions};
use iocluster_loadgen::scenario::handshake::{self, HandshakeMode, HandshakeOptions};
use iocluster_loadgen::scenario::hold::{self, HoldOptions, MemorySource};
use iocluster_loadgen::{Details, Report, RunOptions, Target, TransportKind};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::MutexGuard;

/// The bound of the server's start.
const START_LIMIT: Duration = Duration::from_secs(10);

/// Each scenario's measured phase.
const RUN: Duration = Duration::from_millis(1000);

/// Lines of the server's output kept for failure messages.
const LOG_LINES: usize = 200;

/// One server at a time: on two cores, servers running side by side would
/// make each run measure the others.
static ONE_SERVER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running `iocluster` master (built-in app, 2 workers), killed by its
/// PID when dropped; its workers die with it (PR_SET_PDEATHSIG).
struct Server {
    child: Child,
    pid: u32,
    port: u16,
    log: Arc<Mutex<VecDeque<String>>>,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL to the master's own PID (start_kill signals child.id()).
        let _ = self.child.start_kill();
    }
}

/// Where the debug build of the server is: `$CARGO_TARGET_DIR/debug` when
/// that is set, else the workspace's `target/debug`.
fn server_binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let binary = target_dir.join("debug").join("iocluster");
    assert!(
        binary.is_file(),
        "the iocluster server binary is missing at {}: the smoke tests run the \
         debug build of the server, so run `cargo build` (or `cargo build -p iocluster`) \
         in the workspace first",
        binary.display()
    );
    binary
}

impl Server {
    /// Starts `iocluster --port 0 --admin off --workers 2 --ping-interval
    /// 300` and returns once it listens and both workers are ready.
    async fn start() -> Server {
        let turn = ONE_SERVER_AT_A_TIME.lock().await;
        let mut child = Command::new(server_binary())
            .args(["--port", "0", "--admin", "off", "--workers", "2"])
            .args(["--ping-interval", "300"])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the iocluster binary starts");
        let pid = child.id().expect("a running child has a pid");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(keep_lines(stdout, Arc::clone(&log), lines_tx.clone()));
        tokio::spawn(keep_lines(stderr, Arc::clone(&log), lines_tx));

        let mut port = None;
        let mut workers_ready = 0;
        let started = tokio::time::timeout(START_LIMIT, async {
            while let Some(line) = lines.recv().await {
                if let Some(rest) = after(&line, "iocluster listening on http://") {
                    port = rest
                        .split_whitespace()
                        .next()
                        .and_then(|addr| addr.rsplit_once(':'))
                        .and_then(|(_, port)| port.parse::<u16>().ok());
                } else if line.contains("master") && line.contains("worker ready") {
                    workers_ready += 1;
                }
                if port.is_some() && workers_ready >= 2 {
                    return true;
                }
            }
            false
        })
        .await;
        let server = Server {
            child,
            pid,
            port: port.unwrap_or(0),
            log,
            _turn: turn,
        };
        assert!(
            matches!(started, Ok(true)),
            "iocluster did not listen with 2 ready workers within {START_LIMIT:?}:\n{}",
            server.logs()
        );
        server
    }

    /// Run options against this server for [`RUN`], 4 source addresses.
    fn options(&self) -> RunOptions {
        let target = Target::parse(&format!("http://127.0.0.1:{}", self.port))
            .expect("a loopback URL parses");
        let mut options = RunOptions::new(target, RUN);
        options.sources = 4;
        options
    }

    /// The server's last output lines.
    fn logs(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Asserts that `report` completed with no protocol error and
    /// something done.
    fn assert_clean(&self, report: &Report) {
        assert_eq!(
            report.error_total,
            0,
            "protocol errors: {:?} {:?}\n{}\nserver log:\n{}",
            report.errors,
            report.error_examples,
            report.summary(),
            self.logs()
        );
        assert!(
            report.completed > 0 && report.per_second > 0.0,
            "nothing completed:\n{}",
            report.summary()
        );
        let json: serde_json::Value =
            serde_json::from_str(&report.to_json_line()).expect("the report is JSON");
        assert_eq!(json["completed"], report.completed);
    }
}

/// What follows `marker` in `line`.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|at| &line[at + marker.len()..])
}

/// Keeps the last lines of `reader` in `log` and forwards each; ends at
/// EOF (the server's pipes close when it dies).
async fn keep_lines(
    reader: impl AsyncRead + Unpin,
    log: Arc<Mutex<VecDeque<String>>>,
    lines: tokio::sync::mpsc::UnboundedSender<String>,
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
        let _ = lines.send(line);
    }
}

async fn handshake_in(mode: HandshakeMode) {
    let server = Server::start().await;
    let options = HandshakeOptions {
        mode,
        concurrency: 5,
    };
    let report = handshake::run(&server.options(), &options)
        .await
        .expect("the options are valid");
    server.assert_clean(&report);
    assert!(report.latency.is_some_and(|p| p.p50_ms > 0.0));
    let Details::Handshake(details) = &report.details else {
        panic!("not a handshake report");
    };
    assert_eq!(
        details.upgraded_latency.is_some(),
        mode == HandshakeMode::Browser,
        "only browser mode upgrades"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_handshakes_connect_upgrade_and_close_without_errors() {
    handshake_in(HandshakeMode::Browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_connect_and_close_without_errors() {
    handshake_in(HandshakeMode::Websocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_handshakes_connect_and_close_without_errors() {
    handshake_in(HandshakeMode::Polling).await;
}

async fn echo_over(transport: TransportKind) {
    let server = Server::start().await;
    let options = EchoOptions {
        clients: 5,
        payload_bytes: 32,
        transport,
    };
    let report = echo::run(&server.options(), &options)
        .await
        .expect("the options are valid");
    server.assert_clean(&report);
    let Details::Echo(details) = &report.details else {
        panic!("not an echo report");
    };
    assert_eq!(details.connected, 5);
    assert!(report.latency.is_some_and(|p| p.count == report.completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_gets_every_ack_back() {
    echo_over(TransportKind::Websocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_echo_gets_every_ack_back() {
    echo_over(TransportKind::Polling).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_every_broadcast_to_every_client() {
    let server = Server::start().await;
    let options = FanoutOptions {
        clients: 5,
        rate: 20.0,
    };
    let report = fanout::run(&server.options(), &options)
        .await
        .expect("the options are valid");
    server.assert_clean(&report);
    let Details::Fanout(details) = &report.details else {
        panic!("not a fanout report");
    };
    assert!(details.broadcasts > 0);
    assert_eq!(details.deliveries_expected, details.broadcasts * 5);
    assert_eq!(details.deliveries_missing, 0, "{}", report.summary());
    assert_eq!(report.completed, details.deliveries_expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_keeps_sessions_open_and_reads_the_server_tree_memory() {
    let server = Server::start().await;
    let options = HoldOptions {
        clients: 5,
        memory: MemorySource::Tree(server.pid),
    };
    let report = hold::run(&server.options(), &options)
        .await
        .expect("the server's /proc is readable");
    server.assert_clean(&report);
    let Details::Hold(details) = &report.details else {
        panic!("not a hold report");
    };
    assert_eq!((details.open, details.open_at_end), (5, 5));
    assert_eq!(
        details.pids.len(),
        3,
        "master and 2 workers: {:?}",
        details.pids
    );
    assert!(details.pids.contains(&server.pid));
    assert!(details.rss_before_bytes.is_some_and(|rss| rss > 0));
    assert!(details.bytes_per_session.is_some());
    // Pings every 300 ms for over a second: every session answered some.
    assert!(
        details.pings_answered >= 5,
        "pings answered: {}",
        details.pings_answered
    );
}
