//! Headers around the protocol: CORS and the session cookie.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_engineio::{CookieConfig, Cors, CorsOrigin, EngineConfig};
use support::*;

const ORIGIN: &str = "https://app.example";

fn listed_with_credentials() -> Cors {
    Cors::new(CorsOrigin::List(vec![ORIGIN.to_owned()])).credentials(true)
}

#[tokio::test]
async fn without_cors_no_access_control_headers_are_sent() {
    let server = TestServer::start(EngineConfig::default()).await;

    let handshake = server
        .request("GET", "EIO=4&transport=polling", &[("Origin", ORIGIN)], b"")
        .await;
    assert_eq!(handshake.status, 200);
    assert!(
        !handshake.has_header_starting_with("access-control-"),
        "{:?}",
        handshake.headers
    );
    let error = server
        .request("GET", "EIO=4", &[("Origin", ORIGIN)], b"")
        .await;
    assert!(!error.has_header_starting_with("access-control-"));
}

#[tokio::test]
async fn cors_any_allows_every_origin_with_a_wildcard() {
    let server = TestServer::start(EngineConfig::default().cors(Cors::new(CorsOrigin::Any))).await;

    let response = server
        .request(
            "GET",
            "EIO=4&transport=polling",
            &[("Origin", "https://anywhere.example")],
            b"",
        )
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert_eq!(response.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn cors_any_with_credentials_echoes_the_origin() {
    let cors = Cors::new(CorsOrigin::Any).credentials(true);
    let server = TestServer::start(EngineConfig::default().cors(cors)).await;

    let response = server
        .request(
            "GET",
            "EIO=4&transport=polling",
            &[("Origin", "https://anywhere.example")],
            b"",
        )
        .await;

    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://anywhere.example")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(response.header_all("vary").contains(&"Origin"));
}

#[tokio::test]
async fn cors_list_with_credentials_echoes_an_allowed_origin() {
    let server = TestServer::start(EngineConfig::default().cors(listed_with_credentials())).await;

    let response = server
        .request("GET", "EIO=4&transport=polling", &[("Origin", ORIGIN)], b"")
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(
        response.header_all("vary").contains(&"Origin"),
        "{:?}",
        response.headers
    );
}

#[tokio::test]
async fn cors_list_sends_no_allow_origin_to_other_origins() {
    let server = TestServer::start(EngineConfig::default().cors(listed_with_credentials())).await;

    for origin in ["https://evil.example", "https://app.example.evil", "null"] {
        let response = server
            .request("GET", "EIO=4&transport=polling", &[("Origin", origin)], b"")
            .await;
        assert_eq!(response.header("access-control-allow-origin"), None);
        assert_eq!(response.header("access-control-allow-credentials"), None);
    }
}

#[tokio::test]
async fn cors_headers_are_sent_on_error_responses_too() {
    let server = TestServer::start(EngineConfig::default().cors(listed_with_credentials())).await;

    let response = server
        .request("GET", "EIO=3&transport=polling", &[("Origin", ORIGIN)], b"")
        .await;

    response.assert_engine_error(400, 5, "Unsupported protocol version");
    assert_eq!(response.header("access-control-allow-origin"), Some(ORIGIN));
}

#[tokio::test]
async fn cors_preflight_answers_204_with_methods_and_the_requested_headers() {
    let server = TestServer::start(EngineConfig::default().cors(listed_with_credentials())).await;

    let response = server
        .request(
            "OPTIONS",
            "EIO=4&transport=polling",
            &[
                ("Origin", ORIGIN),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type,x-custom"),
            ],
            b"",
        )
        .await;

    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("content-type,x-custom")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        server.engine.session_count(),
        0,
        "a preflight opens nothing"
    );
}

#[tokio::test]
async fn cookie_is_off_by_default() {
    let server = TestServer::start(EngineConfig::default()).await;

    let handshake = server.get("EIO=4&transport=polling").await;
    assert_eq!(handshake.header("set-cookie"), None);
    let (_, response) = server
        .ws_connect("EIO=4&transport=websocket")
        .await
        .expect("websocket handshake");
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn default_cookie_is_set_on_the_polling_handshake() {
    let server = TestServer::start(EngineConfig::default().cookie(CookieConfig::default())).await;

    let handshake = server.get("EIO=4&transport=polling").await;

    let sid = open_packet(handshake.text())["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    assert_eq!(
        handshake.header_all("set-cookie"),
        vec![format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")]
    );
    // Only the handshake sets it.
    let post = server.post(&polling(&sid), "4hello").await;
    assert_eq!(post.header("set-cookie"), None);
}

#[tokio::test]
async fn default_cookie_is_set_on_the_websocket_handshake() {
    let server = TestServer::start(EngineConfig::default().cookie(CookieConfig::default())).await;

    let (mut ws, response) = server
        .ws_connect("EIO=4&transport=websocket")
        .await
        .expect("websocket handshake");

    let sid = open_packet(&ws.recv_text().await)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    assert_eq!(response.status(), 101);
    let cookies: Vec<_> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII cookie"))
        .collect();
    assert_eq!(
        cookies,
        vec![format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")]
    );
    ws.close().await;
}
