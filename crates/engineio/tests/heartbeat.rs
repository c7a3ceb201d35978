//! The server heartbeat: a ping every `ping_interval`; no pong within
//! `ping_timeout` closes the session.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::{Duration, Instant};

use iocluster_engineio::{CloseReason, EngineConfig};
use support::*;

const PING_INTERVAL: Duration = Duration::from_millis(100);
/// Generous, so a pong delayed by a busy test machine still counts.
const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// Enough pings to outlive `PING_INTERVAL + PING_TIMEOUT`.
const PINGS: usize = 8;

fn heartbeat_config() -> EngineConfig {
    EngineConfig::default()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
}

#[tokio::test]
async fn polling_client_that_answers_pings_keeps_its_session() {
    let server = TestServer::start_silent(heartbeat_config()).await;
    let started = Instant::now();
    let sid = server.open_polling().await;

    let mut last = started;
    for _ in 0..PINGS {
        assert_eq!(server.poll_payload(&sid).await, "2");
        let now = Instant::now();
        assert!(
            now - last >= PING_INTERVAL,
            "ping {:?} after the previous one",
            now - last
        );
        last = now;
        server.send_payload(&sid, "3").await;
    }

    assert!(started.elapsed() > PING_INTERVAL + PING_TIMEOUT);
    assert!(server.engine.session(&sid).is_some());
    assert_eq!(server.events.close_reasons(&sid), vec![]);
}

#[tokio::test]
async fn websocket_client_that_answers_pings_keeps_its_session() {
    let server = TestServer::start_silent(heartbeat_config()).await;
    let started = Instant::now();
    let (mut ws, sid, _) = server.open_websocket().await;

    let mut last = started;
    for _ in 0..PINGS {
        assert_eq!(ws.recv_text().await, "2");
        let now = Instant::now();
        assert!(
            now - last >= PING_INTERVAL,
            "ping {:?} after the previous one",
            now - last
        );
        last = now;
        ws.send_text("3").await;
    }

    assert!(started.elapsed() > PING_INTERVAL + PING_TIMEOUT);
    assert!(server.engine.session(&sid).is_some());
    assert_eq!(server.events.close_reasons(&sid), vec![]);
    ws.close().await;
}

#[tokio::test]
async fn pings_move_to_websocket_after_an_upgrade() {
    let server = TestServer::start_silent(heartbeat_config()).await;
    let sid = server.open_polling().await;
    let mut ws = server.upgrade(&sid).await;

    for _ in 0..3 {
        assert_eq!(ws.recv_text().await, "2");
        ws.send_text("3").await;
    }

    assert_eq!(server.events.close_reasons(&sid), vec![]);
    ws.close().await;
}

#[tokio::test]
async fn polling_client_that_misses_a_pong_is_closed_with_ping_timeout() {
    let server = TestServer::start_silent(heartbeat_config()).await;
    let started = Instant::now();
    let sid = server.open_polling().await;
    assert_eq!(server.poll_payload(&sid).await, "2");

    // No pong: the next poll ends with a close packet.
    let closed = server.poll_payload(&sid).await;

    assert_eq!(closed, "1");
    assert!(
        started.elapsed() >= PING_INTERVAL + PING_TIMEOUT,
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::PingTimeout
    );
    server
        .poll(&sid)
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn websocket_client_that_misses_a_pong_is_closed_with_ping_timeout() {
    let server = TestServer::start_silent(heartbeat_config()).await;
    let started = Instant::now();
    let (mut ws, sid, _) = server.open_websocket().await;
    assert_eq!(ws.recv_text().await, "2");

    let end = ws.until_closed().await;

    assert!(end.frames.is_empty(), "{end:?}");
    assert!(
        started.elapsed() >= PING_INTERVAL + PING_TIMEOUT,
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::PingTimeout
    );
    server.wait_until_gone(&sid).await;
}
