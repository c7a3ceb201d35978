//! Nodes that forward each other's sessions, found through a static
//! `--peers` list (no Redis): a session of one node is served through
//! another's master (request after request on one kept-alive connection,
//! a chunked body included; many sessions' requests at once over one link
//! per owning worker); a session id naming no known node is refused
//! at once; the peer port refuses whoever does not know the secret.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::{Duration, Instant};

use iocluster_testkit::{
    Master, PollingSession, connect_packet_sid, free_port, http, one_cluster_at_a_time,
};
use support::iocluster_bin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "static fleet secret";

/// Two nodes, numbered 1 and 2, that know each other; their peer ports.
async fn two_nodes() -> ([Master; 2], [u16; 2]) {
    let ports = [free_port(), free_port()];
    let a = start_node(0, ports).await;
    let b = start_node(1, ports).await;
    ([a, b], ports)
}

/// Node `me + 1` of two whose peer ports are `ports`.
async fn start_node(me: usize, ports: [u16; 2]) -> Master {
    let other = 1 - me;
    let listen = format!("127.0.0.1:{}", ports[me]);
    let peers = format!("{}=127.0.0.1:{}", other + 1, ports[other]);
    let id = (me + 1).to_string();
    Master::start(
        iocluster_bin(),
        2,
        &[
            "--node-id",
            &id,
            "--peer-listen",
            &listen,
            "--peer-secret",
            SECRET,
            "--peers",
            &peers,
        ],
    )
    .await
}

#[tokio::test]
async fn a_session_of_one_node_is_served_through_the_other() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, b], _) = two_nodes().await;
    let session = PollingSession::open(b.addr).await.unwrap().via(a.addr);
    connect_and_echo(&session, 0).await;
}

#[tokio::test]
async fn a_sid_naming_no_known_node_gets_session_id_unknown_at_once() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, _b], _) = two_nodes().await;
    // Node 3 (`AAAAAw` + instance 0) is in nobody's list.
    let forged = "/socket.io/?EIO=4&transport=polling&sid=AAAAAwAAAAA0123456789abcdefghij";
    let mut fastest = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let response = http(a.addr, "GET", forged, b"").await.unwrap();
        fastest = fastest.min(started.elapsed());
        assert_eq!(response.status, 400);
        assert_eq!(
            response.text(),
            r#"{"code":1,"message":"Session ID unknown"}"#
        );
    }
    assert!(
        fastest < Duration::from_millis(100),
        "the refusal took {fastest:?}"
    );
}

#[tokio::test]
async fn the_peer_port_refuses_who_does_not_know_the_secret() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, b], ports) = two_nodes().await;
    let session = PollingSession::open(a.addr).await.unwrap();

    // A client that goes straight to the peer port with a plain request for
    // a real session gets nothing but the challenge, and is closed.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", ports[0]))
        .await
        .unwrap();
    let request = format!(
        "GET /socket.io/?EIO=4&transport=polling&sid={} HTTP/1.1\r\nHost: x\r\n\r\n",
        session.sid
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = iocluster_testkit::within(
        iocluster_testkit::WAIT,
        "the peer port to close",
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(answer.starts_with(b"IOCLP1"), "{answer:?}");
    assert_eq!(
        answer.len(),
        6 + 32,
        "nothing but the challenge: {answer:?}"
    );

    let metrics = http(a.admin, "GET", "/metrics", b"").await.unwrap();
    assert!(
        metrics
            .text()
            .contains("iocluster_peer_connections_total{result=\"refused\"} 1"),
        "{}",
        metrics.text()
    );
    drop(b);
}

#[tokio::test]
async fn a_kept_alive_connection_carries_forwarded_requests_one_after_another() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, b], _) = two_nodes().await;
    let target = polling_target(&b).await;
    let mut connection = iocluster_testkit::HttpConnection::open(a.addr)
        .await
        .unwrap();

    // A chunked body, in two chunks, for a session of the other node.
    connection
        .write(
            format!(
                "POST {target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                 1\r\n4\r\n1\r\n0\r\n0\r\n\r\n"
            )
            .as_bytes(),
        )
        .await;
    let posted = connection.read_response().await;
    assert_eq!(posted.status, 200, "{}", posted.text());
    assert_eq!(posted.text(), "ok");

    // On the same connection, answers of the owner read by length: the
    // CONNECT's, then an ack's.
    assert!(
        poll_on(&mut connection, &target, |p| connect_packet_sid(p)
            .is_some())
        .await,
        "the CONNECT sent in chunks was answered"
    );
    let echoed = connection
        .request("POST", &target, b"427[\"echo\",\"x\"]")
        .await
        .unwrap();
    assert_eq!(echoed.text(), "ok");
    assert!(
        poll_on(&mut connection, &target, |p| p == "437[\"x\"]").await,
        "the ack came back"
    );
    drop(b);
}

/// Polls on `connection` until a packet is `wanted` (five polls at most).
async fn poll_on(
    connection: &mut iocluster_testkit::HttpConnection,
    target: &str,
    wanted: impl Fn(&str) -> bool,
) -> bool {
    for _ in 0..5 {
        let polled = connection.request("GET", target, b"").await.unwrap();
        assert_eq!(polled.status, 200, "{}", polled.text());
        if polled.text().split('\x1e').any(&wanted) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_body_over_the_owners_limit_gets_the_owners_answer_through_the_other_node() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, b], _) = two_nodes().await;
    let body = vec![b'4'; 2_000_000];
    let direct = http(b.addr, "POST", &polling_target(&b).await, &body)
        .await
        .unwrap();
    let forwarded = http(a.addr, "POST", &polling_target(&b).await, &body)
        .await
        .unwrap();
    assert_eq!(
        (forwarded.status, forwarded.text()),
        (direct.status, direct.text())
    );
    // The node that forwarded it still forwards.
    let session = PollingSession::open(b.addr).await.unwrap().via(a.addr);
    session.post(&["40"]).await.unwrap();
}

#[tokio::test]
async fn sessions_forwarded_at_once_share_one_link_per_owning_worker() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, b], _) = two_nodes().await;
    // Twenty sessions of B, all driven through A at the same time: before
    // links, each request in flight held a peer connection of its own.
    let sessions = (0..20).map(|n| async move {
        let session = PollingSession::open(b.addr).await.unwrap().via(a.addr);
        connect_and_echo(&session, n).await;
    });
    futures_util::future::join_all(sessions).await;

    let metrics = http(b.admin, "GET", "/metrics", b"").await.unwrap();
    let accepted = metrics
        .text()
        .lines()
        .find_map(|line| {
            line.strip_prefix("iocluster_peer_connections_total{result=\"accepted\"} ")
        })
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("the accepted peer connections are counted");
    // At most one link from each of A's two workers to each of B's two
    // (never one per request in flight: twenty long polls at least).
    assert!(
        (1..=4).contains(&accepted),
        "{accepted} peer connections for 20 sessions between 2 and 2 workers"
    );
    // A says so too, and counts what crossed its links.
    let metrics = http(a.admin, "GET", "/metrics", b"").await.unwrap();
    let metrics = metrics.text();
    let opened = sum_of(metrics, "iocluster_peer_links_opened_total", "");
    assert_eq!(opened, accepted, "{metrics}");
    let frames = sum_of(metrics, "iocluster_peer_link_io_total", "what=\"frames\"");
    let writes = sum_of(metrics, "iocluster_peer_link_io_total", "what=\"writes\"");
    // 20 × (a CONNECT, 3 events, the polls): one frame each way at least.
    assert!(
        writes > 0 && frames >= writes,
        "{frames} frames, {writes} writes"
    );
    assert!(frames >= 20 * 4, "{frames} frames");
}

/// The sum of `metric`'s samples (every worker's) whose labels contain
/// `with`.
fn sum_of(metrics: &str, metric: &str, with: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(metric) && line.contains(with))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_node_that_restarts_is_reached_again_through_the_other() {
    let _turn = one_cluster_at_a_time().await;
    let ([a, mut b], ports) = two_nodes().await;
    let before = PollingSession::open(b.addr).await.unwrap().via(a.addr);
    connect_and_echo(&before, 1).await;

    // B stops (its links end) and starts again on the same peer port.
    b.signal(iocluster_testkit::Signal::SIGTERM);
    assert!(b.wait_exit(iocluster_testkit::WAIT).await.success());
    let b = start_node(1, ports).await;

    // Its old sessions are gone: their clients hear so at once.
    let gone = http(a.addr, "GET", &before.target(), b"").await.unwrap();
    assert_eq!(gone.status, 400);
    assert_eq!(gone.text(), r#"{"code":1,"message":"Session ID unknown"}"#);
    // New ones are served through A again.
    let after = PollingSession::open(b.addr).await.unwrap().via(a.addr);
    connect_and_echo(&after, 2).await;
}

/// Connects `session` to the main namespace, then three events with acks
/// echo `n` back.
async fn connect_and_echo(session: &PollingSession, n: usize) {
    session.post(&["40"]).await.unwrap();
    session
        .get_until(|p| connect_packet_sid(p).is_some())
        .await
        .unwrap();
    for ack in 0..3 {
        session
            .post(&[&format!("42{ack}[\"echo\",{n}]")])
            .await
            .unwrap();
        let expected = format!("43{ack}[{n}]");
        session.get_until(|p| p == expected).await.unwrap();
    }
}

/// The polling URL of a new session of `node`.
async fn polling_target(node: &Master) -> String {
    let session = PollingSession::open(node.addr).await.unwrap();
    format!("/socket.io/?EIO=4&transport=polling&sid={}", session.sid)
}
