//! Engine.IO v4 and Socket.IO v5 packets, as far as a load generator needs
//! them: parse what the server sends, build the few packets clients send.
//!
//! Written by hand: the text formats are a type digit and a few optional
//! fields, and the hot paths (an ack, a broadcast) are parsed without
//! decoding their JSON.

use serde::Deserialize;

use crate::error::ClientError;

/// The separator of packets in a polling payload.
pub const RECORD_SEPARATOR: char = '\x1e';

/// An Engine.IO packet (text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    /// `0{...}`: the handshake, with its JSON.
    Open(&'a str),
    /// `1`: the session is closed.
    Close,
    /// `2` (or `2probe`): a ping, with its data.
    Ping(&'a str),
    /// `3` (or `3probe`): a pong, with its data.
    Pong(&'a str),
    /// `4...`: a message: the Socket.IO packet.
    Message(&'a str),
    /// `5`: upgrade done.
    Upgrade,
    /// `6`: nothing (ends a pending poll during an upgrade).
    Noop,
}

impl<'a> EnginePacket<'a> {
    /// Parses one packet.
    ///
    /// ```
    /// use iocluster_loadgen::packet::EnginePacket;
    /// assert_eq!(EnginePacket::parse("42[\"a\"]").unwrap(), EnginePacket::Message("2[\"a\"]"));
    /// assert_eq!(EnginePacket::parse("3probe").unwrap(), EnginePacket::Pong("probe"));
    /// ```
    pub fn parse(text: &'a str) -> Result<EnginePacket<'a>, ClientError> {
        let rest = text.get(1..).unwrap_or("");
        match text.as_bytes().first() {
            Some(b'0') => Ok(EnginePacket::Open(rest)),
            Some(b'1') => Ok(EnginePacket::Close),
            Some(b'2') => Ok(EnginePacket::Ping(rest)),
            Some(b'3') => Ok(EnginePacket::Pong(rest)),
            Some(b'4') => Ok(EnginePacket::Message(rest)),
            Some(b'5') => Ok(EnginePacket::Upgrade),
            Some(b'6') => Ok(EnginePacket::Noop),
            _ => Err(ClientError::unexpected(text)),
        }
    }
}

/// The packets of a polling payload (`packet\x1epacket...`).
pub fn payload_packets(body: &str) -> impl Iterator<Item = &str> {
    body.split(RECORD_SEPARATOR)
        .filter(|packet| !packet.is_empty())
}

/// The handshake data of an open packet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id.
    pub sid: String,
    /// Transports the session may upgrade to.
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// The largest message or payload the server accepts.
    #[serde(default)]
    pub max_payload: u64,
}

impl Handshake {
    /// Parses the JSON of an open packet (`0{...}` without the `0`).
    pub fn parse(json: &str) -> Result<Handshake, ClientError> {
        serde_json::from_str(json).map_err(|_| ClientError::unexpected(&format!("0{json}")))
    }
}

/// A Socket.IO packet (text; binary packets are told apart but not
/// decoded). Fields borrow from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketPacket<'a> {
    /// `0`: connected to `namespace`; `data` is `{"sid":...}`.
    Connect {
        /// The namespace (`/` when absent).
        namespace: &'a str,
        /// The JSON data.
        data: &'a str,
    },
    /// `1`: disconnected from `namespace`.
    Disconnect {
        /// The namespace.
        namespace: &'a str,
    },
    /// `2`: an event; `data` is the JSON array `["name", args...]`.
    Event {
        /// The namespace.
        namespace: &'a str,
        /// The ack id the sender waits for, if any.
        ack: Option<u64>,
        /// The JSON array.
        data: &'a str,
    },
    /// `3`: the ack of event `id`; `data` is the JSON array of its args.
    Ack {
        /// The namespace.
        namespace: &'a str,
        /// The ack id.
        id: u64,
        /// The JSON array.
        data: &'a str,
    },
    /// `4`: connecting to `namespace` was refused.
    ConnectError {
        /// The namespace.
        namespace: &'a str,
        /// The JSON data (the reason).
        data: &'a str,
    },
    /// `5`/`6`: an event or ack with binary attachments (not decoded).
    Binary,
}

impl<'a> SocketPacket<'a> {
    /// Parses a Socket.IO packet: `type[attachments-][/nsp,][id][json]`.
    ///
    /// ```
    /// use iocluster_loadgen::packet::SocketPacket;
    /// let ack = SocketPacket::parse("37[\"hi\"]").unwrap();
    /// assert_eq!(ack, SocketPacket::Ack { namespace: "/", id: 7, data: "[\"hi\"]" });
    /// ```
    pub fn parse(text: &'a str) -> Result<SocketPacket<'a>, ClientError> {
        let bad = || ClientError::unexpected(&format!("4{text}"));
        let kind = *text.as_bytes().first().ok_or_else(bad)?;
        let mut rest = &text[1..];
        if matches!(kind, b'5' | b'6') {
            return Ok(SocketPacket::Binary);
        }
        let mut namespace = "/";
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            namespace = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            Some(rest[..digits].parse::<u64>().map_err(|_| bad())?)
        } else {
            None
        };
        let data = &rest[digits..];
        match (kind, id) {
            (b'0', _) => Ok(SocketPacket::Connect { namespace, data }),
            (b'1', _) => Ok(SocketPacket::Disconnect { namespace }),
            (b'2', ack) => Ok(SocketPacket::Event {
                namespace,
                ack,
                data,
            }),
            (b'3', Some(id)) => Ok(SocketPacket::Ack {
                namespace,
                id,
                data,
            }),
            (b'4', _) => Ok(SocketPacket::ConnectError { namespace, data }),
            _ => Err(bad()),
        }
    }
}

/// The arguments of event `name`, as JSON text without the brackets
/// (`["name",1,2]` gives `1,2`), if `data` is that event.
///
/// A plain prefix match, without decoding the JSON: the names this tool
/// waits for have no characters JSON would escape.
pub fn event_args<'a>(data: &'a str, name: &str) -> Option<&'a str> {
    let rest = data.strip_prefix("[\"")?.strip_prefix(name)?;
    let rest = rest.strip_prefix('"')?;
    let inner = rest.strip_suffix(']')?;
    if inner.is_empty() {
        Some("")
    } else {
        inner.strip_prefix(',')
    }
}

/// The Engine.IO packet of event `name` with ack `id` and `args` (JSON text
/// without brackets): `42<id>["name",args]`.
pub fn event_with_ack(id: u64, name: &str, args: &str) -> String {
    let mut packet = String::with_capacity(name.len() + args.len() + 28);
    packet.push_str("42");
    packet.push_str(&id.to_string());
    packet.push_str("[\"");
    packet.push_str(name);
    packet.push('"');
    if !args.is_empty() {
        packet.push(',');
        packet.push_str(args);
    }
    packet.push(']');
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_packets_of_every_type_parse() {
        assert_eq!(
            EnginePacket::parse("0{}").unwrap(),
            EnginePacket::Open("{}")
        );
        assert_eq!(EnginePacket::parse("1").unwrap(), EnginePacket::Close);
        assert_eq!(EnginePacket::parse("2").unwrap(), EnginePacket::Ping(""));
        assert_eq!(
            EnginePacket::parse("2probe").unwrap(),
            EnginePacket::Ping("probe")
        );
        assert_eq!(EnginePacket::parse("3").unwrap(), EnginePacket::Pong(""));
        assert_eq!(
            EnginePacket::parse("40").unwrap(),
            EnginePacket::Message("0")
        );
        assert_eq!(EnginePacket::parse("5").unwrap(), EnginePacket::Upgrade);
        assert_eq!(EnginePacket::parse("6").unwrap(), EnginePacket::Noop);
    }

    #[test]
    fn empty_and_unknown_engine_packets_are_unexpected() {
        assert!(EnginePacket::parse("").is_err());
        assert!(EnginePacket::parse("9").is_err());
        assert!(EnginePacket::parse("x").is_err());
    }

    #[test]
    fn polling_payload_splits_on_record_separator() {
        let packets: Vec<_> =
            payload_packets("2\x1e40{\"sid\":\"a\"}\x1e42[\"welcome\"]").collect();
        assert_eq!(packets, ["2", "40{\"sid\":\"a\"}", "42[\"welcome\"]"]);
        assert_eq!(payload_packets("").count(), 0);
    }

    #[test]
    fn handshake_json_gives_sid_and_intervals() {
        let json = r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;
        let handshake = Handshake::parse(json).unwrap();
        assert_eq!(handshake.sid, "abc");
        assert_eq!(handshake.upgrades, ["websocket"]);
        assert_eq!(
            (handshake.ping_interval, handshake.ping_timeout),
            (300, 200)
        );
        assert!(Handshake::parse("{\"nosid\":1}").is_err());
    }

    #[test]
    fn socket_packets_with_namespace_and_ack_parse() {
        assert_eq!(
            SocketPacket::parse("0{\"sid\":\"x\"}").unwrap(),
            SocketPacket::Connect {
                namespace: "/",
                data: "{\"sid\":\"x\"}"
            }
        );
        assert_eq!(
            SocketPacket::parse("2/chat,12[\"m\"]").unwrap(),
            SocketPacket::Event {
                namespace: "/chat",
                ack: Some(12),
                data: "[\"m\"]"
            }
        );
        assert_eq!(
            SocketPacket::parse("2[\"welcome\",{}]").unwrap(),
            SocketPacket::Event {
                namespace: "/",
                ack: None,
                data: "[\"welcome\",{}]"
            }
        );
        assert_eq!(
            SocketPacket::parse("3/chat,5[]").unwrap(),
            SocketPacket::Ack {
                namespace: "/chat",
                id: 5,
                data: "[]"
            }
        );
        assert_eq!(
            SocketPacket::parse("4{\"message\":\"no\"}").unwrap(),
            SocketPacket::ConnectError {
                namespace: "/",
                data: "{\"message\":\"no\"}"
            }
        );
        assert_eq!(
            SocketPacket::parse("1").unwrap(),
            SocketPacket::Disconnect { namespace: "/" }
        );
        assert_eq!(
            SocketPacket::parse("51-[\"b\",{\"_placeholder\":true,\"num\":0}]").unwrap(),
            SocketPacket::Binary
        );
    }

    #[test]
    fn ack_without_id_and_unknown_types_are_unexpected() {
        assert!(SocketPacket::parse("3[]").is_err());
        assert!(SocketPacket::parse("9").is_err());
        assert!(SocketPacket::parse("").is_err());
        assert!(SocketPacket::parse("399999999999999999999999[]").is_err());
    }

    #[test]
    fn event_args_match_the_name_exactly() {
        assert_eq!(
            event_args("[\"broadcast\",{\"t\":1}]", "broadcast"),
            Some("{\"t\":1}")
        );
        assert_eq!(event_args("[\"broadcast\"]", "broadcast"), Some(""));
        assert_eq!(event_args("[\"broadcaster\",1]", "broadcast"), None);
        assert_eq!(event_args("[\"welcome\",{}]", "broadcast"), None);
        assert_eq!(event_args("[\"broadcast\",1", "broadcast"), None);
    }

    #[test]
    fn event_with_ack_round_trips_through_the_parser() {
        let packet = event_with_ack(42, "echo", "\"xyz\"");
        assert_eq!(packet, "4242[\"echo\",\"xyz\"]");
        let EnginePacket::Message(message) = EnginePacket::parse(&packet).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(
            SocketPacket::parse(message).unwrap(),
            SocketPacket::Event {
                namespace: "/",
                ack: Some(42),
                data: "[\"echo\",\"xyz\"]"
            }
        );
        assert_eq!(event_with_ack(1, "ping", ""), "421[\"ping\"]");
    }
}
