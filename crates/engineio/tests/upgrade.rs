//! Upgrading a polling session to WebSocket: `2probe`/`3probe`, a noop for
//! the pending poll, then `5`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::time::{Duration, Instant};

use iocluster_engineio::{EngineConfig, Message, TransportKind};
use support::*;

#[tokio::test]
async fn probe_is_answered_and_the_pending_poll_gets_a_noop() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut pending = server.begin_poll(&sid).await;
    let (mut ws, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");

    ws.send_text("2probe").await;

    assert_eq!(ws.recv_text().await, "3probe");
    let noop = pending.read_response().await;
    assert_eq!(noop.status, 200);
    assert_eq!(noop.text(), "6");
    // Until `5`, the session stays on polling.
    assert_eq!(server.session(&sid).transport(), TransportKind::Polling);
    assert!(
        !server
            .events
            .events()
            .contains(&Event::Upgrade(sid.clone()))
    );
}

#[tokio::test]
async fn upgrade_packet_switches_the_session_to_websocket() {
    let server = TestServer::start_silent(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let session = server.session(&sid);
    let (mut ws, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    // Queued while the session is still on polling, with nobody polling.
    session.send(Message::text("queued")).expect("send");
    session
        .send(Message::binary(vec![9u8, 8]))
        .expect("send binary");

    ws.send_text("5").await;

    server.events.upgraded(&sid).await;
    assert_eq!(session.transport(), TransportKind::WebSocket);
    assert_eq!(ws.recv_text().await, "4queued");
    assert_eq!(&ws.recv_binary().await[..], &[9, 8]);
    session.send(Message::text("after")).expect("send after");
    assert_eq!(ws.recv_text().await, "4after");
    ws.send_text("4from client").await;
    assert_eq!(
        server.events.messages(&sid, 1).await,
        vec![Message::text("from client")]
    );
    server
        .poll(&sid)
        .await
        .assert_engine_error(400, 3, "Bad request");
    assert_eq!(server.events.close_reasons(&sid), vec![]);
}

#[tokio::test]
async fn second_websocket_for_an_upgraded_session_is_closed() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut ws = server.upgrade(&sid).await;

    let (mut second, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("the second handshake is accepted, then closed");

    let end = second.until_closed().await;
    assert!(end.close_frame, "{end:?}");
    assert!(end.frames.is_empty(), "{end:?}");
    ws.send_text("4first still works").await;
    assert_eq!(ws.recv_text().await, "4first still works");
    assert_eq!(server.session(&sid).transport(), TransportKind::WebSocket);
}

#[tokio::test]
async fn second_websocket_during_an_upgrade_is_closed() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let (mut first, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");
    first.send_text("2probe").await;
    assert_eq!(first.recv_text().await, "3probe");

    let (mut second, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("the second handshake is accepted, then closed");
    let end = second.until_closed().await;
    assert!(end.close_frame && end.frames.is_empty(), "{end:?}");

    first.send_text("5").await;
    server.events.upgraded(&sid).await;
    first.send_text("4hi").await;
    assert_eq!(first.recv_text().await, "4hi");
}

#[tokio::test]
async fn upgrade_without_upgrade_packet_times_out_and_the_session_stays_on_polling() {
    let upgrade_timeout = Duration::from_millis(200);
    let server = TestServer::start(EngineConfig::default().upgrade_timeout(upgrade_timeout)).await;
    let sid = server.open_polling().await;
    let mut pending = server.begin_poll(&sid).await;
    let (mut ws, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");
    let started = Instant::now();
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await, "3probe");
    assert_eq!(pending.read_response().await.text(), "6");

    // No `5`: the server gives up on this WebSocket.
    let end = ws.until_closed().await;

    assert!(started.elapsed() >= upgrade_timeout, "closed too early");
    assert!(end.frames.is_empty(), "{end:?}");
    assert_eq!(server.session(&sid).transport(), TransportKind::Polling);
    server.send_payload(&sid, "4still polling").await;
    assert_eq!(server.poll_payload(&sid).await, "4still polling");
    let events = server.events.events();
    assert!(!events.contains(&Event::Upgrade(sid.clone())));
    assert_eq!(server.events.close_reasons(&sid), vec![]);
}

#[tokio::test]
async fn upgrade_packet_before_the_probe_fails_the_upgrade_and_keeps_polling() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let (mut ws, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");

    ws.send_text("5").await;

    let end = ws.until_closed().await;
    assert!(end.frames.is_empty(), "{end:?}");
    assert_eq!(server.session(&sid).transport(), TransportKind::Polling);
    server.send_payload(&sid, "4still polling").await;
    assert_eq!(server.poll_payload(&sid).await, "4still polling");

    // A later, proper upgrade still succeeds.
    let mut ws = server.upgrade(&sid).await;
    ws.send_text("4upgraded").await;
    assert_eq!(ws.recv_text().await, "4upgraded");
}

#[tokio::test]
async fn binary_frames_flow_after_an_upgrade() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut ws = server.upgrade(&sid).await;

    ws.send_binary(&[1, 2, 3]).await;

    assert_eq!(&ws.recv_binary().await[..], &[1, 2, 3]);
    assert_eq!(
        server.events.messages(&sid, 1).await,
        vec![Message::binary(vec![1u8, 2, 3])]
    );
}

/// The client sends `5` only once its pending poll has ended. `3probe` and
/// the noop travel on two connections: when the noop wins, it ends the poll
/// pending then, the client polls again, reads `3probe`, and waits for that
/// new poll to end. It must get a noop too (Node writes one every 100 ms),
/// not wait for the next ping (25 s): the upgrade stalled that long behind
/// HAProxy in a browser (tests/js/test/browser-cors.test.js).
#[tokio::test]
async fn a_poll_made_after_the_first_noop_gets_a_noop_too() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;
    let mut pending = server.begin_poll(&sid).await;
    let (mut ws, _) = server
        .ws_connect(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .expect("websocket for the upgrade");
    ws.send_text("2probe").await;
    assert_eq!(pending.read_response().await.text(), "6");

    // The client polls again before it has read `3probe`.
    let mut next = server.connect().await;
    next.write(&http_request(
        "GET",
        &server.target(&polling(&sid)),
        &[],
        b"",
    ))
    .await;
    assert_eq!(ws.recv_text().await, "3probe");

    let started = Instant::now();
    assert_eq!(next.read_response().await.text(), "6");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the second poll ended after {:?}",
        started.elapsed()
    );
    ws.send_text("5").await;
    server.events.upgraded(&sid).await;
    assert_eq!(server.session(&sid).transport(), TransportKind::WebSocket);
}
