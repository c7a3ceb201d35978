//! The Socket.IO v5 packet format: `<type>[<attachments>-][<nsp>,][<id>][<json>]`,
//! with binary attachments sent as the Engine.IO binary messages that follow.
//!
//! [`encode`] writes a packet once into a shared buffer, ready for any
//! number of sessions; a [`Decoder`] per connection turns the messages it
//! receives back into packets, refusing what Node's socket.io-parser
//! refuses.
//!
//! ```
//! use iocluster_socketio::parser::{Decoder, Packet, PacketType, encode};
//!
//! let packet = Packet {
//!     kind: PacketType::Event,
//!     nsp: "/admin".into(),
//!     id: Some(13),
//!     data: Some(serde_json::json!(["foo"])),
//!     attachments: Vec::new(),
//! };
//! let encoded = encode(&packet);
//! assert_eq!(encoded.text.as_str(), r#"2/admin,13["foo"]"#);
//!
//! let mut decoder = Decoder::default();
//! assert_eq!(decoder.decode_text(encoded.text.as_str())?, Some(packet));
//! # Ok::<(), iocluster_socketio::parser::ParseError>(())
//! ```

mod decoder;
mod encoder;
mod error;
mod header;
mod nesting;
mod payload;
#[cfg(test)]
mod tests;

pub use decoder::{Decoder, DecoderLimits};
pub use encoder::{Encoded, encode};
pub use error::ParseError;

use bytes::Bytes;
use serde_json::Value;

/// The seven packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: connect to a namespace (client), or accept (server).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event.
    Event,
    /// `3`: an acknowledgement.
    Ack,
    /// `4`: a refused connect.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

/// One Socket.IO packet.
///
/// Binary data stays out of `data`: each binary value is a placeholder
/// `{"_placeholder":true,"num":N}` in `data` and the bytes are
/// `attachments[N]`. Encoding a packet with attachments gives type
/// `BinaryEvent`/`BinaryAck` on the wire whatever `kind` says for
/// `Event`/`Ack`; decoding gives back `BinaryEvent`/`BinaryAck`.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace, `/` by default.
    pub nsp: String,
    /// The ack id, for events that want an ack and for acks.
    pub id: Option<u64>,
    /// The JSON payload: an object for CONNECT, an array for events and
    /// acks (event name first for events), object or string for
    /// CONNECT_ERROR, none for DISCONNECT.
    pub data: Option<Value>,
    /// Binary attachments, in placeholder order.
    pub attachments: Vec<Bytes>,
}

impl PacketType {
    /// Every packet type, in wire order.
    pub const ALL: [PacketType; 7] = [
        PacketType::Connect,
        PacketType::Disconnect,
        PacketType::Event,
        PacketType::Ack,
        PacketType::ConnectError,
        PacketType::BinaryEvent,
        PacketType::BinaryAck,
    ];

    /// The type's digit on the wire (`0` to `6`).
    ///
    /// ```
    /// use iocluster_socketio::parser::PacketType;
    /// assert_eq!(PacketType::BinaryEvent.to_char(), '5');
    /// ```
    pub fn to_char(self) -> char {
        match self {
            PacketType::Connect => '0',
            PacketType::Disconnect => '1',
            PacketType::Event => '2',
            PacketType::Ack => '3',
            PacketType::ConnectError => '4',
            PacketType::BinaryEvent => '5',
            PacketType::BinaryAck => '6',
        }
    }

    /// The type a wire digit stands for, if any.
    ///
    /// ```
    /// use iocluster_socketio::parser::PacketType;
    /// assert_eq!(PacketType::from_char('3'), Some(PacketType::Ack));
    /// assert_eq!(PacketType::from_char('7'), None);
    /// ```
    pub fn from_char(c: char) -> Option<Self> {
        PacketType::ALL.into_iter().find(|kind| kind.to_char() == c)
    }

    /// Whether binary attachments follow packets of this type
    /// (`BINARY_EVENT`, `BINARY_ACK`).
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }

    /// The name Node's socket.io-parser gives the type, e.g. `CONNECT_ERROR`.
    pub fn name(self) -> &'static str {
        match self {
            PacketType::Connect => "CONNECT",
            PacketType::Disconnect => "DISCONNECT",
            PacketType::Event => "EVENT",
            PacketType::Ack => "ACK",
            PacketType::ConnectError => "CONNECT_ERROR",
            PacketType::BinaryEvent => "BINARY_EVENT",
            PacketType::BinaryAck => "BINARY_ACK",
        }
    }
}

impl std::fmt::Display for PacketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
