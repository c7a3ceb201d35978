//! What a hostile client or a broken network can hold on a worker: nothing
//! for longer than the heartbeat. Clients that stop reading while
//! broadcasts go out have their connections closed as soon as their
//! sessions end, and what was queued for them is freed; the other clients
//! get every broadcast.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::{Duration, Instant};

use iocluster_testkit::{Master, WAIT, WsClient, one_cluster_at_a_time, open_fds, within};
use support::iocluster_bin;

/// The heartbeat of these tests: a session whose client does not answer
/// ends after PING_INTERVAL + PING_TIMEOUT.
const PING_INTERVAL: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap();
    kb * 1024
}

/// Emits `broadcast(payload)` and waits for its ack; returns the
/// `broadcast` events the client received meanwhile.
async fn broadcast(client: &mut WsClient, ack: u64, payload: &str) -> usize {
    client
        .send(&format!("42{ack}[\"broadcast\",\"{payload}\"]"))
        .await
        .unwrap();
    let mut events = 0;
    loop {
        let packet = client.next_packet().await.unwrap();
        if packet.starts_with("42[\"broadcast\"") {
            events += 1;
        } else if packet == format!("43{ack}[]") {
            return events;
        }
    }
}

#[tokio::test]
async fn clients_that_stop_reading_are_let_go_when_their_sessions_end() {
    let _turn = one_cluster_at_a_time().await;
    let interval = format!("{}ms", PING_INTERVAL.as_millis());
    let timeout = format!("{}ms", PING_TIMEOUT.as_millis());
    let master = Master::start(
        iocluster_bin(),
        1,
        &["--ping-interval", &interval, "--ping-timeout", &timeout],
    )
    .await;
    let worker = master.status().await.pids()[0];
    let mut healthy = WsClient::connect(master.addr).await.unwrap();
    let fds_before = master_settled(worker).await;
    let rss_before = rss(worker);

    // Ten clients connect, then never read again (nor answer pings).
    let mut stuck = Vec::new();
    for _ in 0..10 {
        stuck.push(WsClient::connect(master.addr).await.unwrap());
    }

    // 200 broadcasts of 100 KB: the healthy client gets every one.
    let payload = "x".repeat(100_000);
    let mut received = 0;
    for ack in 0..200 {
        received += broadcast(&mut healthy, ack, &payload).await;
    }
    // (Each broadcast is queued to the sender before its ack, on the same
    // connection: counting until the ack counts every broadcast.)
    assert_eq!(received, 200, "the healthy client missed broadcasts");
    // The healthy client answers its pings while the test waits.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let keep_alive = tokio::spawn(async move {
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                _ = &mut stopped => return healthy,
                packet = healthy.next_packet() => {
                    packet.unwrap();
                }
            }
        }
    });

    // The stuck sessions end by the heartbeat...
    let status = master
        .wait_for_status("the stuck sessions to end", WAIT, |status| {
            status.total_sessions() == 1
        })
        .await;
    let ended = Instant::now();
    // ...and their connections, and what was queued for them, go with
    // them: within ping interval + timeout + 1 s of the session's end.
    let limit = PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(1);
    loop {
        let fds = open_fds(worker);
        if fds <= fds_before {
            break;
        }
        assert!(
            ended.elapsed() < limit,
            "the worker still has {fds} descriptors, {fds_before} before the stuck clients, {:?} after their sessions ended\n{}\n{}",
            ended.elapsed(),
            status.0,
            master.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // What was queued is freed as the sessions' tasks end, which may be
    // just after their connections closed: within the same limit.
    loop {
        let rss_after = rss(worker);
        if rss_after < rss_before + 5 * 1024 * 1024 {
            break;
        }
        assert!(
            ended.elapsed() < limit,
            "worker RSS {rss_after} B after the stuck clients, {rss_before} B before, {:?} after their sessions ended",
            ended.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = master.status().await;
    let worker_status = &status.0["workers"][0];
    assert!(
        worker_status["closed_with_unsent"].as_u64().unwrap_or(0)
            + worker_status["write_stalls"].as_u64().unwrap_or(0)
            >= 1,
        "the cut connections are counted: {worker_status}"
    );

    // The healthy client is still served.
    stop.send(()).unwrap();
    let mut healthy = keep_alive.await.unwrap();
    healthy.echo(1000, "still here").await.unwrap();
    drop(stuck);
}

/// The worker's descriptor count once it holds still.
async fn master_settled(pid: u32) -> usize {
    let mut last = open_fds(pid);
    let mut same = 0;
    while same < 5 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = open_fds(pid);
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}

/// The status of a WebSocket handshake with `Origin: origin` on `addr`.
async fn websocket_handshake_status(addr: std::net::SocketAddr, origin: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = within(WAIT, "the handshake's answer", stream.read(&mut byte))
            .await
            .unwrap();
        assert_eq!(n, 1, "the server closed before answering");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn cors_origins_also_guard_websocket_upgrades() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(
        iocluster_bin(),
        1,
        &["--cors-origin", "https://app.example"],
    )
    .await;
    assert_eq!(
        websocket_handshake_status(master.addr, "https://evil.example").await,
        403
    );
    assert_eq!(
        websocket_handshake_status(master.addr, "https://app.example").await,
        101
    );
    drop(master);

    let master = Master::start(
        iocluster_bin(),
        1,
        &[
            "--cors-origin",
            "https://app.example",
            "--websocket-any-origin",
        ],
    )
    .await;
    assert_eq!(
        websocket_handshake_status(master.addr, "https://evil.example").await,
        101
    );
}
