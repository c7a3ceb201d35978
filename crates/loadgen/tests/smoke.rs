//! Smoke runs of every scenario against the real `iocluster` binary (the
//! debug build, with 2 workers and fast pings): tiny counts, about a second
//! each, zero protocol errors and non-zero throughput expected.
//!
//! The server binary is not a dependency of this crate: build it first
//! (`cargo build`, which CI does before `cargo test`).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

use std::path::PathBuf;
use std::time::Duration;

use iocluster_loadgen::scenario::echo::{self, EchoOptions};
use iocluster_loadgen::scenario::fanout::{self, FanoutOptions};
use iocluster_loadgen::scenario::handshake::{self, HandshakeMode, HandshakeOptions};
use iocluster_loadgen::scenario::hold::{self, HoldOptions, MemorySource};
use iocluster_loadgen::{Details, Report, RunOptions, Target, TransportKind};
use iocluster_testkit::{Master, iocluster_binary, make_test_certificates, one_cluster_at_a_time};
use tokio::sync::MutexGuard;

/// Each scenario's measured phase.
const RUN: Duration = Duration::from_millis(1000);

/// A running `iocluster` master (built-in app, 2 workers, pings every
/// 300 ms), stopped by its PID when dropped. One at a time: on two cores,
/// servers running side by side would make each run measure the others.
struct Server {
    master: Master,
    _turn: MutexGuard<'static, ()>,
}

impl Server {
    /// Starts the master and returns once both workers are ready.
    async fn start() -> Server {
        let turn = one_cluster_at_a_time().await;
        let master = Master::start(&iocluster_binary(), 2, &["--ping-interval", "300"]).await;
        Server {
            master,
            _turn: turn,
        }
    }

    /// Run options against this server for [`RUN`], 4 source addresses.
    fn options(&self) -> RunOptions {
        let target = Target::parse(&format!("http://127.0.0.1:{}", self.master.addr.port()))
            .expect("a loopback URL parses");
        let mut options = RunOptions::new(target, RUN);
        options.sources = 4;
        options
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
            self.master.logs()
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
    assert!(
        details.close_latency.is_some(),
        "every completed session was closed"
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
        memory: MemorySource::Tree(server.master.pid),
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
    assert!(details.pids.contains(&server.master.pid));
    assert!(details.rss_before_bytes.is_some_and(|rss| rss > 0));
    assert!(details.bytes_per_session.is_some());
    // Pings every 300 ms for over a second: every session answered some.
    assert!(
        details.pings_answered >= 5,
        "pings answered: {}",
        details.pings_answered
    );
}

/// A test CA and a certificate for 127.0.0.1 it signs, in a temporary
/// directory: (dir, CA, certificate, key).
fn test_certificates() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    make_test_certificates(dir.path());
    let path = |name: &str| dir.path().join(name);
    let (ca, cert, key) = (path("ca.crt"), path("server.crt"), path("server.key"));
    (dir, ca, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_handshakes_and_echo_verify_the_servers_certificate() {
    let (_dir, ca, cert, key) = test_certificates();
    let _turn = one_cluster_at_a_time().await;
    let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
    let master = Master::start(
        &iocluster_binary(),
        2,
        &["--tls-cert", &cert, "--tls-key", &key],
    )
    .await;
    let url = format!("https://127.0.0.1:{}", master.addr.port());
    let mut options = RunOptions::new(Target::parse(&url).expect("an https URL parses"), RUN);
    options.sources = 4;

    // Without the CA, the run is refused before it starts.
    assert!(
        handshake::run(
            &options,
            &HandshakeOptions {
                mode: HandshakeMode::Browser,
                concurrency: 2
            }
        )
        .await
        .is_err()
    );

    options.ca_file = Some(ca);
    let report = handshake::run(
        &options,
        &HandshakeOptions {
            mode: HandshakeMode::Browser,
            concurrency: 5,
        },
    )
    .await
    .expect("the options are valid");
    assert_eq!(
        report.error_total,
        0,
        "{}\n{}",
        report.summary(),
        master.logs()
    );
    assert!(report.completed > 0);
    let report = echo::run(
        &options,
        &EchoOptions {
            clients: 5,
            payload_bytes: 32,
            transport: TransportKind::Websocket,
        },
    )
    .await
    .expect("the options are valid");
    assert_eq!(
        report.error_total,
        0,
        "{}\n{}",
        report.summary(),
        master.logs()
    );
    assert!(report.completed > 0);
}
