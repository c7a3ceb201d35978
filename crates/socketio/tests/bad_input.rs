//! Malformed and hostile Socket.IO input from raw WebSocket and polling
//! clients, against a real server.
//!
//! The documented behaviour (see `parser::Decoder`): a packet that does not
//! decode means the client broke the protocol, so the server closes that
//! client's connection: its sockets leave with `parse error`, it gets the
//! Engine.IO close packet `1` and its session is forgotten. Packets that
//! decode but make no sense here (an ack nobody waits for, an event for a
//! namespace not joined, a CONNECT_ERROR from a client) are ignored and the
//! connection stays. In every case the server stays up and other clients
//! connected at the same time keep exchanging events.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_socketio::DisconnectReason;
use support::*;

/// A text packet nested `depth` levels deep: an event whose argument is
/// `depth - 1` nested arrays.
fn deeply_nested_event(depth: usize) -> String {
    format!(
        "42[\"echo\",{}{}]",
        "[".repeat(depth - 1),
        "]".repeat(depth - 1)
    )
}

/// Engine.IO messages whose Socket.IO packet does not decode, with what is
/// wrong with each.
fn malformed_packets() -> Vec<(&'static str, String)> {
    vec![
        ("an empty Socket.IO packet", "4".to_owned()),
        ("garbage instead of a packet", "4garbage".to_owned()),
        ("a CONNECT_ERROR of garbage", "44garbage".to_owned()),
        ("unknown packet type 9", "49[\"echo\"]".to_owned()),
        ("invalid JSON", "42[\"echo\",".to_owned()),
        (
            "trailing garbage after the JSON",
            "42[\"echo\"]x".to_owned(),
        ),
        ("an event that is an object", "42{\"echo\":1}".to_owned()),
        ("an event that is a string", "42\"echo\"".to_owned()),
        ("an event that is an empty array", "42[]".to_owned()),
        ("an event named by an array", "42[[\"echo\"]]".to_owned()),
        (
            "the reserved event name connect",
            "42[\"connect\"]".to_owned(),
        ),
        (
            "the reserved event name disconnect",
            "42[\"disconnect\",1]".to_owned(),
        ),
        (
            "an ack id over u64",
            "4218446744073709551616[\"echo\"]".to_owned(),
        ),
        ("an ack that is not an array", "431{}".to_owned()),
        (
            "a CONNECT whose auth is not an object",
            "40\"token\"".to_owned(),
        ),
        ("a DISCONNECT with a payload", "41{}".to_owned()),
        (
            "an absurd attachment count",
            "45999999999-[\"x\"]".to_owned(),
        ),
        (
            "attachments on a plain event",
            "421-[\"echo\",{\"_placeholder\":true,\"num\":0}]".to_owned(),
        ),
        (
            "a placeholder past the attachments",
            "451-[\"echo\",{\"_placeholder\":true,\"num\":1}]".to_owned(),
        ),
        (
            "JSON nested 10,000 levels deep",
            deeply_nested_event(10_000),
        ),
        (
            "a CONNECT nested 10,000 levels deep",
            format!("40{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)),
        ),
    ]
}

/// Opens a WebSocket bystander and a polling bystander on the main
/// namespace, and checks they work.
async fn bystanders(server: &TestServer) -> (WsClient, PollingClient) {
    let mut ws = server.websocket_in_main().await;
    let mut polling = server.polling_in_main().await;
    ws.assert_alive("bystander before").await;
    polling.assert_echo("bystander before").await;
    (ws, polling)
}

/// Checks that the WebSocket client was closed for a parse error: the close
/// packet and a close frame, `parse error` on the server, session gone.
async fn assert_closed_for_parse_error(server: &TestServer, bad: &mut WsClient, what: &str) {
    let end = bad.until_closed().await;
    assert_eq!(end.packets, vec!["1".to_owned()], "{what}: close packet");
    assert!(end.close_frame, "{what}: a close frame ends the WebSocket");
    assert_eq!(
        server.disconnections.reason_of_session(&bad.sid).await,
        DisconnectReason::ParseError,
        "{what}"
    );
    server.wait_until_gone(&bad.sid).await;
}

#[tokio::test]
async fn malformed_packet_over_websocket_closes_only_that_client() {
    let server = TestServer::start().await;
    let (mut ws_bystander, mut polling_bystander) = bystanders(&server).await;

    for (what, packet) in malformed_packets() {
        let mut bad = server.websocket_in_main().await;
        bad.send_text(&packet).await;

        assert_closed_for_parse_error(&server, &mut bad, what).await;
        ws_bystander.assert_alive(what).await;
        polling_bystander.assert_echo(what).await;
    }
    assert!(server.has_session(&ws_bystander.sid));
    assert!(server.has_session(&polling_bystander.session.sid));
}

#[tokio::test]
async fn malformed_packet_over_polling_closes_only_that_client() {
    let server = TestServer::start().await;
    let (mut ws_bystander, mut polling_bystander) = bystanders(&server).await;

    for (what, packet) in malformed_packets() {
        let bad = server.polling_in_main().await;
        bad.send(&packet).await;

        assert_eq!(
            server
                .disconnections
                .reason_of_session(&bad.session.sid)
                .await,
            DisconnectReason::ParseError,
            "{what}"
        );
        bad.assert_closed_by_server().await;
        server.wait_until_gone(&bad.session.sid).await;
        ws_bystander.assert_alive(what).await;
        polling_bystander.assert_echo(what).await;
    }
}

#[tokio::test]
async fn malformed_packet_before_any_namespace_closes_the_session() {
    let server = TestServer::start().await;
    let mut bystander = server.websocket_in_main().await;

    let mut bad = server.websocket().await;
    bad.send_text("4garbage").await;

    let end = bad.until_closed().await;
    assert_eq!(end.packets, vec!["1".to_owned()]);
    server.wait_until_gone(&bad.sid).await;
    assert!(server.disconnections.of_session(&bad.sid).is_empty());
    bystander.assert_alive("after").await;
}

#[tokio::test]
async fn text_packet_while_attachments_are_awaited_closes_the_client() {
    let server = TestServer::start().await;
    let (mut ws_bystander, mut polling_bystander) = bystanders(&server).await;
    let header = r#"452-["echo",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;

    // Over WebSocket: the header, one attachment of two, then a text packet.
    let mut bad = server.websocket_in_main().await;
    bad.send_text(header).await;
    bad.send_binary(&[1, 2, 3]).await;
    bad.send_text(r#"42["echo","too early"]"#).await;
    assert_closed_for_parse_error(&server, &mut bad, "websocket").await;

    // Over polling: the header and a text packet in one payload.
    let bad = server.polling_in_main().await;
    bad.send(&format!("{header}\u{1e}42[\"echo\",\"too early\"]"))
        .await;
    assert_eq!(
        server
            .disconnections
            .reason_of_session(&bad.session.sid)
            .await,
        DisconnectReason::ParseError
    );
    bad.assert_closed_by_server().await;

    ws_bystander.assert_alive("after").await;
    polling_bystander.assert_echo("after").await;
}

#[tokio::test]
async fn attachment_without_a_binary_header_closes_the_client() {
    let server = TestServer::start().await;
    let (mut ws_bystander, mut polling_bystander) = bystanders(&server).await;

    let mut bad = server.websocket_in_main().await;
    bad.send_binary(&[1, 2, 3]).await;
    assert_closed_for_parse_error(&server, &mut bad, "websocket").await;

    // `b` + base64 is a binary message in a polling payload.
    let bad = server.polling_in_main().await;
    bad.send("bAQID").await;
    assert_eq!(
        server
            .disconnections
            .reason_of_session(&bad.session.sid)
            .await,
        DisconnectReason::ParseError
    );
    bad.assert_closed_by_server().await;

    ws_bystander.assert_alive("after").await;
    polling_bystander.assert_echo("after").await;
}

#[tokio::test]
async fn binary_event_with_all_its_attachments_is_delivered() {
    let server = TestServer::start().await;

    let mut ws = server.websocket_in_main().await;
    ws.send_text(
        r#"452-7["echo",{"_placeholder":true,"num":1},{"n":{"_placeholder":true,"num":0}}]"#,
    )
    .await;
    ws.send_binary(&[0, 1]).await;
    ws.send_binary(&[255]).await;
    assert_eq!(
        ws.recv_text().await,
        r#"462-7[{"_placeholder":true,"num":1},{"n":{"_placeholder":true,"num":0}}]"#
    );
    assert_eq!(ws.recv_binary().await, vec![0, 1]);
    assert_eq!(ws.recv_binary().await, vec![255]);

    let polling = server.polling_in_main().await;
    polling
        .send("451-3[\"echo\",{\"_placeholder\":true,\"num\":0}]\u{1e}bAQID")
        .await;
    assert_eq!(
        polling.poll().await,
        vec![
            "461-3[{\"_placeholder\":true,\"num\":0}]".to_owned(),
            "bAQID".to_owned()
        ]
    );
}

#[tokio::test]
async fn ack_for_an_unknown_id_is_ignored_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut bystander = server.websocket_in_main().await;

    let mut ws = server.websocket_in_main().await;
    ws.send_text(r#"431["nobody asked"]"#).await;
    ws.send_text("43999[]").await;
    ws.send_text(r#"461-5[{"_placeholder":true,"num":0}]"#)
        .await;
    ws.send_binary(&[9, 9]).await;
    ws.assert_alive("websocket").await;

    let mut polling = server.polling_in_main().await;
    polling.send("431[\"nobody asked\"]\u{1e}43999[]").await;
    polling.assert_echo("polling").await;

    assert!(
        server.disconnections.all().is_empty(),
        "nobody disconnected"
    );
    assert!(server.has_session(&ws.sid) && server.has_session(&polling.session.sid));
    bystander.assert_alive("bystander").await;
}

#[tokio::test]
async fn packets_that_make_no_sense_here_are_ignored_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut ws = server.websocket_in_main().await;

    for (what, packet) in [
        (
            "an event for a namespace not joined",
            r#"42/other,["echo","x"]"#,
        ),
        ("an ack for a namespace not joined", r#"43/other,1["x"]"#),
        (
            "an event to a namespace that does not exist",
            r#"42/nope,["x"]"#,
        ),
        ("a DISCONNECT from a namespace not joined", "41/other,"),
        ("a CONNECT_ERROR sent by the client", r#"44{"message":"x"}"#),
        ("an event no handler takes", r#"42["no-such-event",1]"#),
        ("an event named by a number", "42[42]"),
        ("a second CONNECT to a joined namespace", "40"),
    ] {
        ws.send_text(packet).await;
        ws.assert_alive(what).await;
    }
    assert!(
        server.disconnections.all().is_empty(),
        "nobody disconnected"
    );
}

#[tokio::test]
async fn unknown_namespace_gets_connect_error_and_the_connection_stays() {
    let server = TestServer::start().await;

    let mut ws = server.websocket().await;
    ws.send_text("40/nope,").await;
    assert_eq!(
        ws.recv_text().await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );
    ws.join("/").await;
    ws.assert_alive("websocket").await;

    let mut polling = PollingClient::open(server.addr)
        .await
        .expect("a polling session opens");
    polling.send("40/nope,").await;
    assert_eq!(
        polling.poll().await,
        vec![r#"44/nope,{"message":"Invalid namespace"}"#.to_owned()]
    );
    polling.join_main().await;
    polling.assert_echo("polling").await;
}

#[tokio::test]
async fn namespace_left_with_disconnect_can_be_joined_again() {
    let server = TestServer::start().await;
    let mut ws = server.websocket_in_main().await;

    ws.send_text("41").await;
    assert_eq!(
        server.disconnections.reason_of_session(&ws.sid).await,
        DisconnectReason::ClientNamespaceDisconnect
    );
    ws.join("/").await;

    ws.assert_alive("rejoined").await;
}

#[tokio::test]
async fn namespace_can_be_joined_again_after_a_duplicate_connect_and_a_leave() {
    let server = TestServer::start().await;
    let mut ws = server.websocket_in_main().await;
    ws.send_text("40").await; // ignored: already joined
    ws.assert_alive("after the duplicate").await;

    ws.send_text("41").await;
    assert_eq!(
        server.disconnections.reason_of_session(&ws.sid).await,
        DisconnectReason::ClientNamespaceDisconnect
    );
    ws.join("/").await;

    ws.assert_alive("rejoined").await;
}
