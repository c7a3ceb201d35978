//! Cross-site WebSocket hijacking: with CORS origins configured, a
//! WebSocket upgrade from another origin is refused (browsers apply no CORS
//! to WebSockets), unless the check is turned off for non-browser clients.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_engineio::{Cors, CorsOrigin, EngineConfig};
use support::*;

fn app_only(check: bool) -> EngineConfig {
    EngineConfig::default().cors(
        Cors::new(CorsOrigin::List(vec!["https://app.example".into()]))
            .check_websocket_origin(check),
    )
}

/// The answer to a WebSocket handshake for `query` with `Origin: origin`
/// (none when empty).
async fn upgrade(server: &TestServer, query: &str, origin: &str) -> Response {
    let mut headers = WS_UPGRADE_HEADERS.to_vec();
    if !origin.is_empty() {
        headers.push(("Origin", origin));
    }
    server.request("GET", query, &headers, b"").await
}

#[tokio::test]
async fn a_websocket_from_a_foreign_origin_gets_403() {
    let server = TestServer::start_silent(app_only(true)).await;
    let response = upgrade(&server, "EIO=4&transport=websocket", "https://evil.example").await;
    response.assert_engine_error(403, 4, "Origin not allowed");
    // The upgrade of a polling session too.
    let sid = server.open_polling().await;
    let response = upgrade(
        &server,
        &format!("EIO=4&transport=websocket&sid={sid}"),
        "https://evil.example",
    )
    .await;
    response.assert_engine_error(403, 4, "Origin not allowed");
    assert_eq!(
        server.session(&sid).transport(),
        iocluster_engineio::TransportKind::Polling
    );
}

#[tokio::test]
async fn a_websocket_from_an_allowed_origin_or_no_origin_is_accepted() {
    let server = TestServer::start_silent(app_only(true)).await;
    for origin in ["https://app.example", ""] {
        let response = upgrade(&server, "EIO=4&transport=websocket", origin).await;
        assert_eq!(response.status, 101, "origin {origin:?}");
    }
}

#[tokio::test]
async fn without_the_check_a_foreign_origin_is_accepted() {
    let server = TestServer::start_silent(app_only(false)).await;
    let response = upgrade(&server, "EIO=4&transport=websocket", "https://evil.example").await;
    assert_eq!(response.status, 101);
}
