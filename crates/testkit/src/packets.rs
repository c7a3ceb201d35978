//! Engine.IO v4 and Socket.IO v5 packets as the tests write and read them:
//! exact text, built and picked apart by hand so that a test states the
//! wire format it expects.

use std::io;

use serde_json::Value;

/// The Engine.IO path of a default server, with the protocol version.
pub const ENGINE_PATH: &str = "/socket.io/?EIO=4";

/// The request target of a polling handshake.
pub fn handshake_target() -> String {
    format!("{ENGINE_PATH}&transport=polling")
}

/// The JSON of an Engine.IO open packet `0{...}`; fails the test if
/// `packet` is not one.
pub fn open_packet(packet: &str) -> Value {
    let json = packet
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {packet:?}"));
    serde_json::from_str(json).expect("open packet JSON")
}

/// The `sid` of an Engine.IO open packet `0{...}`, or an error saying what
/// `text` is instead.
pub fn open_packet_sid(text: &str) -> io::Result<String> {
    let open = text
        .strip_prefix('0')
        .ok_or_else(|| io::Error::other(format!("not an open packet: {text:?}")))?;
    let handshake: Value = serde_json::from_str(open).map_err(io::Error::other)?;
    handshake["sid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("no sid in {text:?}")))
}

/// The Engine.IO + Socket.IO text of a CONNECT to `nsp`.
///
/// ```
/// assert_eq!(iocluster_testkit::connect_packet("/"), "40");
/// assert_eq!(iocluster_testkit::connect_packet("/admin"), "40/admin,");
/// ```
pub fn connect_packet(nsp: &str) -> String {
    if nsp == "/" {
        "40".to_owned()
    } else {
        format!("40{nsp},")
    }
}

/// The JSON of the Socket.IO CONNECT answer for namespace `nsp` (`40{...}`
/// or `40/nsp,{...}`); fails the test if `packet` is not one.
pub fn connect_answer(nsp: &str, packet: &str) -> Value {
    let json = packet
        .strip_prefix(&connect_packet(nsp))
        .unwrap_or_else(|| panic!("not a CONNECT to {nsp}: {packet:?}"));
    serde_json::from_str(json).expect("CONNECT JSON")
}

/// The socket id of a Socket.IO CONNECT answer `40{"sid":...}` on the main
/// namespace, if `packet` is one.
pub fn connect_packet_sid(packet: &str) -> Option<String> {
    let connect: Value = serde_json::from_str(packet.strip_prefix("40")?).ok()?;
    connect["sid"].as_str().map(str::to_owned)
}

/// The worker pid of the `iocluster` app's `welcome` event, if `packet` is
/// that event.
pub fn welcome_worker(packet: &str) -> Option<u32> {
    let event: Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    if event[0] != "welcome" {
        return None;
    }
    event[1]["worker"].as_u64()?.try_into().ok()
}

/// The recovery offset of an EVENT packet `42[...,"<offset>"]`: its last
/// argument, when connection state recovery is on.
pub fn event_offset(packet: &str) -> Option<String> {
    let event: Value = serde_json::from_str(packet.strip_prefix("42")?).ok()?;
    let args = event.as_array()?;
    if args.len() < 2 {
        return None;
    }
    args.last()?.as_str().map(str::to_owned)
}

/// The `echo` event asking for ack `ack`: `42<ack>["echo",<text>]`.
///
/// ```
/// assert_eq!(iocluster_testkit::echo_packet(7, "hi"), r#"427["echo","hi"]"#);
/// assert_eq!(iocluster_testkit::echo_ack(7, "hi"), r#"437["hi"]"#);
/// ```
pub fn echo_packet(ack: u64, text: &str) -> String {
    format!("42{ack}{}", serde_json::json!(["echo", text]))
}

/// The ack of [`echo_packet`]: `43<ack>[<text>]`.
pub fn echo_ack(ack: u64, text: &str) -> String {
    format!("43{ack}{}", serde_json::json!([text]))
}
