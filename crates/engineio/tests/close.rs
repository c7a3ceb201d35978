//! Ending sessions: from the client, from the server, and by losing the
//! connection.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::{Duration, Instant};

use iocluster_engineio::{CloseReason, EngineConfig, Message};
use support::*;
use tokio_tungstenite::tungstenite::Message as Frame;

#[tokio::test]
async fn polling_close_packet_answers_the_pending_poll_with_a_noop() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut pending = server.begin_poll(&sid).await;

    server.send_payload(&sid, "1").await;

    let noop = pending.read_response().await;
    assert_eq!(noop.status, 200);
    assert_eq!(noop.text(), "6");
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportClose
    );
    server.wait_until_gone(&sid).await;
    server
        .poll(&sid)
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn polling_close_packet_after_messages_delivers_them_first() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;

    server.send_payload(&sid, "4a\x1e4b\x1e1").await;

    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportClose
    );
    let messages = server.events.messages(&sid, 2).await;
    assert_eq!(messages, vec![Message::text("a"), Message::text("b")]);
    let events = server.events.events();
    assert!(
        matches!(events.last(), Some(Event::Close(..))),
        "on_close comes last: {events:?}"
    );
}

#[tokio::test]
async fn websocket_close_packet_closes_with_transport_close() {
    let server = TestServer::start(EngineConfig::default()).await;
    let (mut ws, sid, _) = server.open_websocket().await;

    ws.send_text("1").await;

    let end = ws.until_closed().await;
    assert!(end.frames.is_empty(), "{end:?}");
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportClose
    );
    server.wait_until_gone(&sid).await;
}

#[tokio::test]
async fn websocket_close_frame_closes_with_transport_close() {
    let server = TestServer::start(EngineConfig::default()).await;
    let (ws, sid, _) = server.open_websocket().await;

    ws.close().await;

    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportClose
    );
    server.wait_until_gone(&sid).await;
}

#[tokio::test]

async fn abrupt_websocket_disconnect_closes_with_transport_close() {
    let server = TestServer::start(EngineConfig::default()).await;
    let (ws, sid, _) = server.open_websocket().await;

    // No close frame: the TCP connection just ends.
    drop(ws);

    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportClose
    );
    server.wait_until_gone(&sid).await;
}

#[tokio::test]
async fn dropped_pending_poll_closes_the_session_with_transport_error() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let pending = server.begin_poll(&sid).await;

    drop(pending);

    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );
    server.wait_until_gone(&sid).await;
}

#[tokio::test]
async fn server_close_delivers_queued_messages_then_the_close_packet_in_the_next_poll() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    session.send(Message::text("a")).expect("send a");
    session.send(Message::text("b")).expect("send b");

    session.close();

    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::ForcedClose
    );
    // As Node: the queued messages in one response, the close packet in
    // the next one.
    assert_eq!(server.poll_payload(&sid).await, "4a\x1e4b");
    assert_eq!(server.poll_payload(&sid).await, "1");
    session.closed().await;
    server.wait_until_gone(&sid).await;
    assert_eq!(
        server.events.close_reasons(&sid),
        vec![CloseReason::ForcedClose],
        "on_close runs once"
    );
}

#[tokio::test]
async fn server_close_delivers_queued_messages_then_a_close_packet_over_websocket() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let (mut ws, sid, _) = server.open_websocket().await;
    let session = server.session(&sid);
    session.send(Message::text("a")).expect("send a");
    session.send(Message::binary(vec![1u8])).expect("send b");

    session.close();

    let end = ws.until_closed().await;
    assert_eq!(
        end.frames,
        vec![
            Frame::text("4a"),
            Frame::binary(vec![1u8]),
            Frame::text("1")
        ]
    );
    assert!(end.close_frame);
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::ForcedClose
    );
    within(WAIT, "the session to end", session.closed()).await;
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn server_closed_session_whose_client_never_polls_is_dropped_after_the_heartbeat_window() {
    let interval = Duration::from_millis(100);
    let timeout = Duration::from_millis(100);
    let config = EngineConfig::default()
        .ping_interval(interval)
        .ping_timeout(timeout);
    let server = TestServer::start_silent(config).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    let started = Instant::now();

    session.close();

    within(WAIT, "the session to end", session.closed()).await;
    assert!(started.elapsed() >= interval + timeout);
    assert_eq!(server.engine.session_count(), 0);
    assert_eq!(
        server.events.close_reasons(&sid),
        vec![CloseReason::ForcedClose]
    );
}

#[tokio::test]
async fn close_all_closes_every_session_with_server_shutting_down() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let polling_sid = server.open_polling().await;
    let (mut ws, ws_sid, _) = server.open_websocket().await;
    for sid in [&polling_sid, &ws_sid] {
        server
            .session(sid)
            .send(Message::text("bye"))
            .expect("send");
    }

    server.engine.close_all();

    assert_eq!(server.poll_payload(&polling_sid).await, "4bye");
    assert_eq!(server.poll_payload(&polling_sid).await, "1");
    let end = ws.until_closed().await;
    assert_eq!(end.frames, vec![Frame::text("4bye"), Frame::text("1")]);
    for sid in [&polling_sid, &ws_sid] {
        assert_eq!(
            server.events.close_reason(sid).await,
            CloseReason::ServerShuttingDown
        );
    }
    let engine = server.engine.clone();
    eventually(WAIT, "every session to end", || engine.session_count() == 0).await;
}
