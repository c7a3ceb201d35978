//! The real `iocluster` binary: where it is, a master started on port 0
//! that says where it listens, and its admin endpoint's `/status`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::MutexGuard;

use crate::http_connection::http;
use crate::process::{TestProcess, open_fds};
use crate::wait::{POLL_EVERY, WAIT, within};

/// The debug build of the `iocluster` binary: `$CARGO_TARGET_DIR/debug`
/// when that is set (a relative one is taken from the workspace root),
/// else the workspace's `target/debug`. Fails the test, saying how to build
/// it, when it is missing. (The root package's own tests use
/// `env!("CARGO_BIN_EXE_iocluster")`, which cargo builds for them.)
pub fn iocluster_binary() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let binary = target_dir.join("debug").join("iocluster");
    assert!(
        binary.is_file(),
        "the iocluster server binary is missing at {}: these tests run the debug build \
         of the server, so run `cargo build` (or `cargo build -p iocluster`) in the \
         workspace first",
        binary.display()
    );
    binary
}

/// The tests of one test binary hold this while their cluster runs:
/// several clusters of several workers on a two-core machine would make the
/// latency and "within N ms" assertions measure each other instead of the
/// cluster.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the other cluster tests of this test binary to finish.
pub async fn one_cluster_at_a_time() -> MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME.lock().await
}

/// A running `iocluster` master (and its workers, which die with it),
/// killed by its PID when dropped.
///
/// ```no_run
/// # async fn example() {
/// use iocluster_testkit::{Master, iocluster_binary};
/// let master = Master::start(&iocluster_binary(), 2, &["--balance", "round-robin"]).await;
/// assert_eq!(master.status().await.workers().len(), 2);
/// # }
/// ```
pub struct Master {
    process: TestProcess,
    /// The master's PID.
    pub pid: u32,
    /// Where it serves Socket.IO.
    pub addr: SocketAddr,
    /// Its admin endpoint (`/status`).
    pub admin: SocketAddr,
}

impl Master {
    /// Starts `binary --port 0 --admin 127.0.0.1:0 ARGS` and returns once
    /// it has printed both of its addresses, without waiting for workers.
    pub async fn spawn(binary: &Path, args: &[&str]) -> Master {
        let mut command = Command::new(binary);
        command
            .args(["--port", "0", "--admin", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let mut process = TestProcess::spawn("iocluster", command);
        let (mut addr, mut admin) = (None, None);
        process
            .wait_for_line(WAIT, "iocluster to print its addresses", |line| {
                // Workers share the master's stdout and may have written
                // part of a line already: look anywhere in a line.
                let listening = after(line, "iocluster listening on http://")
                    .or_else(|| after(line, "iocluster listening on https://"));
                if let Some(rest) = listening {
                    addr = rest.split_whitespace().next().and_then(|a| a.parse().ok());
                } else if let Some(rest) = after(line, "iocluster admin on http://") {
                    admin = rest
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.strip_suffix("/status"))
                        .and_then(|a| a.parse().ok());
                }
                addr.is_some() && admin.is_some()
            })
            .await;
        Master {
            pid: process.pid(),
            addr: addr.expect("the listening address was read"),
            admin: admin.expect("the admin address was read"),
            process,
        }
    }

    /// Starts a master with `workers` workers and `args`, and returns once
    /// every worker is ready.
    pub async fn start(binary: &Path, workers: usize, args: &[&str]) -> Master {
        let workers_arg = workers.to_string();
        let mut all = vec!["--workers", workers_arg.as_str()];
        all.extend_from_slice(args);
        let master = Master::spawn(binary, &all).await;
        master
            .wait_for_status("every worker to be ready", WAIT, |status| {
                let now = status.workers();
                now.len() == workers && now.iter().all(|w| w.ready && !w.draining)
            })
            .await;
        master
    }

    /// The last lines the master (and its workers) wrote, for failure
    /// messages.
    pub fn logs(&self) -> String {
        self.process.logs()
    }

    /// Sends `signal` to the master.
    pub fn signal(&self, signal: Signal) {
        self.process.signal(signal);
    }

    /// The master's exit status, once it exits within `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        self.process.wait_exit(limit).await
    }

    /// Whether the master process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// `GET /health`: its status code.
    pub async fn health(&self) -> std::io::Result<u16> {
        Ok(http(self.addr, "GET", "/health", b"").await?.status)
    }

    /// `GET /status` from the admin endpoint.
    pub async fn status(&self) -> Status {
        let response = http(self.admin, "GET", "/status", b"")
            .await
            .unwrap_or_else(|error| panic!("GET /status failed: {error}\n{}", self.logs()));
        assert_eq!(response.status, 200, "GET /status: {}", response.text());
        Status(response.json())
    }

    /// Re-reads `/status` until `condition` holds, or fails the test after
    /// `limit` (no event announces a worker's state).
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
