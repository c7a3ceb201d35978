//! Sessions opened directly over WebSocket: one packet per frame, binary as
//! binary frames.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_engineio::{CloseReason, EngineConfig, Message};
use support::*;

#[tokio::test]
async fn websocket_session_echoes_text_and_binary() {
    let server = TestServer::start(EngineConfig::default()).await;
    let (mut ws, sid, _) = server.open_websocket().await;

    ws.send_text("4hello").await;
    assert_eq!(ws.recv_text().await, "4hello");
    ws.send_binary(&[0, 1, 2, 255]).await;
    assert_eq!(&ws.recv_binary().await[..], &[0, 1, 2, 255]);
    ws.send_text("4").await;
    assert_eq!(ws.recv_text().await, "4");

    assert_eq!(
        server.events.messages(&sid, 3).await,
        vec![
            Message::text("hello"),
            Message::binary(vec![0u8, 1, 2, 255]),
            Message::text(""),
        ]
    );
    ws.close().await;
}

#[tokio::test]
async fn malformed_websocket_packet_closes_the_session_with_parse_error() {
    let server = TestServer::start(EngineConfig::default()).await;

    for packet in ["abc", "", "7", "1x", "2probes", "0{}"] {
        let (mut ws, sid, _) = server.open_websocket().await;

        ws.send_text(packet).await;

        let end = ws.until_closed().await;
        assert!(end.frames.is_empty(), "packet {packet:?}: {end:?}");
        assert_eq!(
            server.events.close_reason(&sid).await,
            CloseReason::ParseError,
            "packet {packet:?}"
        );
        server.wait_until_gone(&sid).await;
    }
}

#[tokio::test]
async fn client_ping_packet_closes_the_session_with_transport_error() {
    let server = TestServer::start(EngineConfig::default()).await;
    let (mut ws, sid, _) = server.open_websocket().await;

    // Engine.IO v4 heartbeats go from the server to the client only.
    ws.send_text("2").await;

    ws.until_closed().await;
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );
    server.wait_until_gone(&sid).await;
}

#[tokio::test]
async fn websocket_message_over_max_payload_closes_only_its_connection() {
    let server = TestServer::start(EngineConfig::default().max_payload(1000)).await;
    let (mut bystander, bystander_sid, _) = server.open_websocket().await;
    let (mut ws, sid, open) = server.open_websocket().await;
    assert_eq!(open["maxPayload"], 1000);

    let mut big = String::from("4");
    big.push_str(&"x".repeat(2000));
    ws.send_text(&big).await;

    let end = ws.until_closed().await;
    assert!(end.frames.is_empty(), "{end:?}");
    if let Some(code) = end.code {
        assert_eq!(code, 1009, "close code for a message too big");
    }
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );
    server.wait_until_gone(&sid).await;

    // A message at the limit still goes through on the other session.
    let mut largest = String::from("4");
    largest.push_str(&"y".repeat(999));
    bystander.send_text(&largest).await;
    assert_eq!(bystander.recv_text().await, largest);
    assert_eq!(server.events.close_reasons(&bystander_sid), vec![]);
    bystander.close().await;
}

#[tokio::test]
async fn binary_websocket_message_over_max_payload_closes_the_connection() {
    let server = TestServer::start(EngineConfig::default().max_payload(1000)).await;
    let (mut ws, sid, _) = server.open_websocket().await;

    ws.send_binary(&[7u8; 1001]).await;

    let end = ws.until_closed().await;
    assert!(end.frames.is_empty(), "{end:?}");
    assert_eq!(
        server.events.close_reason(&sid).await,
        CloseReason::TransportError
    );
    server.wait_until_gone(&sid).await;
}
