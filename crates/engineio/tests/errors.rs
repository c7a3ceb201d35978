//! Refused requests: an HTTP status and `{"code","message"}`, as Node's
//! engine.io sends them.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_engineio::EngineConfig;
use support::*;

#[tokio::test]
async fn missing_transport_gets_code_0_transport_unknown() {
    let server = TestServer::start(EngineConfig::default()).await;

    server
        .get("EIO=4")
        .await
        .assert_engine_error(400, 0, "Transport unknown");
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn unknown_transport_gets_code_0_transport_unknown() {
    let server = TestServer::start(EngineConfig::default()).await;

    for transport in ["flashsocket", "webtransport", "Polling", ""] {
        server
            .get(&format!("EIO=4&transport={transport}"))
            .await
            .assert_engine_error(400, 0, "Transport unknown");
    }
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn unknown_sid_gets_code_1_session_id_unknown() {
    let server = TestServer::start(EngineConfig::default()).await;

    server
        .poll("AAAAAAAAAAAAAAAAAAAA")
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
    server
        .post(&polling("AAAAAAAAAAAAAAAAAAAA"), "4hello")
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
    server
        .request(
            "GET",
            "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA",
            WS_UPGRADE_HEADERS,
            b"",
        )
        .await
        .assert_engine_error(400, 1, "Session ID unknown");
}

#[tokio::test]
async fn handshake_that_is_not_a_get_gets_code_2_bad_handshake_method() {
    let server = TestServer::start(EngineConfig::default()).await;

    for method in ["POST", "PUT"] {
        server
            .request(method, "EIO=4&transport=polling", &[], b"4hello")
            .await
            .assert_engine_error(400, 2, "Bad handshake method");
    }
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn websocket_handshake_without_upgrade_gets_code_3_bad_request() {
    let server = TestServer::start(EngineConfig::default()).await;

    server
        .get("EIO=4&transport=websocket")
        .await
        .assert_engine_error(400, 3, "Bad request");
    assert_eq!(server.engine.session_count(), 0);
}

#[tokio::test]
async fn polling_request_for_a_websocket_session_gets_code_3_bad_request() {
    let server = TestServer::start(EngineConfig::default()).await;
    let (mut ws, sid, _) = server.open_websocket().await;

    server
        .poll(&sid)
        .await
        .assert_engine_error(400, 3, "Bad request");
    server
        .post(&polling(&sid), "4hello")
        .await
        .assert_engine_error(400, 3, "Bad request");

    // The mismatch is refused; the session itself goes on.
    ws.send_text("4still here").await;
    assert_eq!(ws.recv_text().await, "4still here");
}

#[tokio::test]
async fn websocket_request_without_upgrade_for_a_polling_session_gets_code_3_bad_request() {
    let server = TestServer::start(EngineConfig::default()).await;
    let sid = server.open_polling().await;

    server
        .get(&format!("EIO=4&transport=websocket&sid={sid}"))
        .await
        .assert_engine_error(400, 3, "Bad request");

    server.send_payload(&sid, "4still here").await;
    assert_eq!(server.poll_payload(&sid).await, "4still here");
}

#[tokio::test]
async fn refused_handshake_gets_code_4_with_the_hooks_message() {
    let config =
        EngineConfig::default().allow_request(|handshake| match handshake.query_param("token") {
            Some("good") => Ok(()),
            other => Err(format!("bad token {other:?}")),
        });
    let server = TestServer::start(config).await;

    server
        .get("EIO=4&transport=polling&token=evil")
        .await
        .assert_engine_error(403, 4, "bad token Some(\"evil\")");
    server
        .request("GET", "EIO=4&transport=websocket", WS_UPGRADE_HEADERS, b"")
        .await
        .assert_engine_error(403, 4, "bad token None");
    assert_eq!(server.engine.session_count(), 0);
    assert!(server.events.events().is_empty(), "no session was opened");

    let accepted = server.get("EIO=4&transport=polling&token=good").await;
    assert_eq!(accepted.status, 200);
    assert_eq!(server.engine.session_count(), 1);
}

#[tokio::test]
async fn missing_or_unsupported_protocol_version_gets_code_5() {
    let server = TestServer::start(EngineConfig::default()).await;

    for query in [
        "transport=polling",
        "EIO=3&transport=polling",
        "EIO=abc&transport=polling",
        "EIO=5&transport=polling",
    ] {
        server
            .get(query)
            .await
            .assert_engine_error(400, 5, "Unsupported protocol version");
    }
    server
        .request("GET", "EIO=3&transport=websocket", WS_UPGRADE_HEADERS, b"")
        .await
        .assert_engine_error(400, 5, "Unsupported protocol version");
    assert_eq!(server.engine.session_count(), 0);
}
