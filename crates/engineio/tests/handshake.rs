//! Opening a session: the open packet over polling and over WebSocket, and
//! the transports a server offers.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::collections::HashSet;
use std::time::Duration;

use iocluster_engineio::{EngineConfig, TransportKind, Transports};
use serde_json::json;
use support::*;

#[tokio::test]
async fn polling_handshake_returns_open_packet_with_node_defaults() {
    let server = TestServer::start(EngineConfig::default()).await;

    let response = server.get("EIO=4&transport=polling").await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let open = open_packet(response.text());
    let sid = open["sid"].as_str().expect("sid").to_owned();
    assert_default_sid(&sid);
    assert_eq!(
        open,
        json!({
            "sid": sid,
            "upgrades": ["websocket"],
            "pingInterval": 25000,
            "pingTimeout": 20000,
            "maxPayload": 1000000,
        })
    );
    server.events.opened(&sid).await;
    assert_eq!(server.session(&sid).transport(), TransportKind::Polling);
}

#[tokio::test]
async fn polling_handshake_reports_the_configured_heartbeat_and_payload_limit() {
    let config = EngineConfig::default()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(4096);
    let server = TestServer::start(config).await;

    let (_, open) = server.handshake().await;

    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(open["maxPayload"], 4096);
}

#[tokio::test]
async fn websocket_handshake_returns_open_packet_without_upgrades() {
    let server = TestServer::start(EngineConfig::default()).await;

    let (ws, sid, open) = server.open_websocket().await;

    assert_default_sid(&sid);
    assert_eq!(
        open,
        json!({
            "sid": sid,
            "upgrades": [],
            "pingInterval": 25000,
            "pingTimeout": 20000,
            "maxPayload": 1000000,
        })
    );
    server.events.opened(&sid).await;
    assert_eq!(server.session(&sid).transport(), TransportKind::WebSocket);
    ws.close().await;
}

#[tokio::test]
async fn every_handshake_gets_a_distinct_sid() {
    let server = TestServer::start(EngineConfig::default()).await;
    let mut sids = HashSet::new();

    for _ in 0..20 {
        let sid = server.open_polling().await;
        assert_default_sid(&sid);
        assert!(sids.insert(sid), "sid reused");
    }

    assert_eq!(server.engine.session_count(), 20);
}

#[tokio::test]
async fn polling_only_server_offers_no_upgrades_and_refuses_websocket_with_code_0() {
    let server = TestServer::start(EngineConfig::default().transports(Transports::POLLING)).await;

    let (sid, open) = server.handshake().await;
    assert_eq!(open["upgrades"], json!([]));

    let direct = server
        .request("GET", "EIO=4&transport=websocket", WS_UPGRADE_HEADERS, b"")
        .await;
    direct.assert_engine_error(400, 0, "Transport unknown");

    let upgrade = server
        .request(
            "GET",
            &format!("EIO=4&transport=websocket&sid={sid}"),
            WS_UPGRADE_HEADERS,
            b"",
        )
        .await;
    upgrade.assert_engine_error(400, 0, "Transport unknown");
    assert_eq!(server.engine.session_count(), 1);
}

#[tokio::test]
async fn websocket_only_server_refuses_polling_with_code_0() {
    let server = TestServer::start(EngineConfig::default().transports(Transports::WEBSOCKET)).await;

    server
        .get("EIO=4&transport=polling")
        .await
        .assert_engine_error(400, 0, "Transport unknown");

    let (ws, _, open) = server.open_websocket().await;
    assert_eq!(open["upgrades"], json!([]));
    ws.close().await;
}

#[tokio::test]
async fn session_exposes_the_handshake_request() {
    let server = TestServer::start(EngineConfig::default()).await;

    let response = server
        .request(
            "GET",
            "EIO=4&transport=polling&token=s%20cret",
            &[("X-Test", "yes")],
            b"",
        )
        .await;
    let sid = open_packet(response.text())["sid"]
        .as_str()
        .expect("sid")
        .to_owned();

    let session = server.session(&sid);
    let handshake = session.handshake();
    assert_eq!(handshake.query_param("token"), Some("s cret"));
    assert_eq!(handshake.query_param("EIO"), Some("4"));
    assert_eq!(handshake.header("x-test"), Some("yes"));
    assert_eq!(handshake.transport, TransportKind::Polling);
    let remote = handshake.remote_addr.expect("remote address");
    assert!(remote.ip().is_loopback());
}
