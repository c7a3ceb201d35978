//! Engine.IO v4 packets: the seven packet types and their text form.
//!
//! A text packet is one ASCII digit (the type) followed by its data. Binary
//! data only travels in `message` packets: as a binary WebSocket frame, or in a
//! polling payload as `b` followed by base64.

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;

use crate::error::PacketError;

/// A message exchanged with the layer above: text or binary.
///
/// Cloning is cheap: both variants share their bytes, so one encoded message
/// can be sent to many sessions without copying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A UTF-8 text message.
    Text(Text),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// Builds a text message from a string slice (copies it once).
    pub fn text(text: &str) -> Self {
        Message::Text(Text::new(text))
    }

    /// Builds a binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Message::Binary(data.into())
    }

    /// The number of payload bytes (without framing).
    pub fn len(&self) -> usize {
        match self {
            Message::Text(text) => text.as_str().len(),
            Message::Binary(data) => data.len(),
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The text of a message, stored as the whole Engine.IO `message` packet
/// (`4` followed by the text).
///
/// Keeping the packet type byte in front means a WebSocket frame for this
/// message is the same shared buffer: a broadcast encodes once and each
/// receiver only bumps a reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct Text(Utf8Bytes);

impl Text {
    /// Copies `text` into a new message.
    pub fn new(text: &str) -> Self {
        Self::build(text.len(), |buf| buf.push_str(text))
    }

    /// Builds a message by writing its text into a buffer with room for
    /// `capacity` bytes: the layer above encodes straight into the packet.
    ///
    /// ```
    /// use iocluster_engineio::Text;
    /// let text = Text::build(5, |buf| buf.push_str("hello"));
    /// assert_eq!(text.as_str(), "hello");
    /// ```
    pub fn build(capacity: usize, write: impl FnOnce(&mut String)) -> Self {
        let mut buf = String::with_capacity(capacity + 1);
        buf.push('4');
        write(&mut buf);
        Text(Utf8Bytes::from(buf))
    }

    /// The text, without the packet type.
    pub fn as_str(&self) -> &str {
        // The first byte is always the ASCII digit '4', a char boundary.
        &self.0.as_str()[1..]
    }

    /// The whole Engine.IO packet (`4` and the text) as shared bytes, to
    /// forward to another process without copying.
    pub fn packet_bytes(&self) -> Bytes {
        Bytes::from(self.0.clone())
    }

    /// Takes back a packet from [`Text::packet_bytes`]: none when the bytes
    /// are not UTF-8 or not a `4…` packet. Checks, never copies.
    pub fn from_packet_bytes(bytes: Bytes) -> Option<Text> {
        if bytes.first() != Some(&b'4') {
            return None;
        }
        Utf8Bytes::try_from(bytes).ok().map(Text)
    }

    /// The whole packet (`4…`), as sent in a WebSocket text frame.
    pub(crate) fn packet(&self) -> &Utf8Bytes {
        &self.0
    }

    /// Wraps a received `4…` frame without copying.
    fn from_packet(frame: Utf8Bytes) -> Self {
        debug_assert!(frame.as_str().starts_with('4'));
        Text(frame)
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text::new(text)
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        Text::new(&text)
    }
}

/// One Engine.IO packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    /// `0` with the handshake JSON.
    Open(String),
    /// `1`.
    Close,
    /// `2`, or `2probe` during an upgrade.
    Ping { probe: bool },
    /// `3`, or `3probe` during an upgrade.
    Pong { probe: bool },
    /// `4` (text) or a binary message.
    Message(Message),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
}

impl Packet {
    /// Decodes a text packet received in a WebSocket frame, keeping the frame's
    /// buffer for text messages.
    pub(crate) fn decode_frame(frame: Utf8Bytes) -> Result<Packet, PacketError> {
        match frame.as_str().as_bytes().first() {
            Some(b'4') => Ok(Packet::Message(Message::Text(Text::from_packet(frame)))),
            _ => Packet::decode_text(frame.as_str()),
        }
    }

    /// Decodes a text packet (type digit and data).
    pub(crate) fn decode_text(text: &str) -> Result<Packet, PacketError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(PacketError::Empty)?;
        let data = chars.as_str();
        let no_data = |packet: Packet| {
            if data.is_empty() {
                Ok(packet)
            } else {
                Err(PacketError::UnexpectedData(kind))
            }
        };
        match kind {
            '0' => Err(PacketError::UnexpectedOpen),
            '1' => no_data(Packet::Close),
            '2' => match data {
                "" => Ok(Packet::Ping { probe: false }),
                "probe" => Ok(Packet::Ping { probe: true }),
                _ => Err(PacketError::UnexpectedData(kind)),
            },
            '3' => match data {
                "" => Ok(Packet::Pong { probe: false }),
                "probe" => Ok(Packet::Pong { probe: true }),
                _ => Err(PacketError::UnexpectedData(kind)),
            },
            '4' => Ok(Packet::Message(Message::Text(Text::new(data)))),
            '5' => no_data(Packet::Upgrade),
            '6' => no_data(Packet::Noop),
            other => Err(PacketError::UnknownType(other)),
        }
    }

    /// The packet as a WebSocket frame.
    pub(crate) fn into_frame(self) -> axum::extract::ws::Message {
        use axum::extract::ws::Message as Frame;
        match self {
            Packet::Message(Message::Text(text)) => Frame::Text(text.0),
            Packet::Message(Message::Binary(data)) => Frame::Binary(data),
            Packet::Open(json) => Frame::Text(format!("0{json}").into()),
            Packet::Close => Frame::Text(Utf8Bytes::from_static("1")),
            Packet::Ping { probe: false } => Frame::Text(Utf8Bytes::from_static("2")),
            Packet::Ping { probe: true } => Frame::Text(Utf8Bytes::from_static("2probe")),
            Packet::Pong { probe: false } => Frame::Text(Utf8Bytes::from_static("3")),
            Packet::Pong { probe: true } => Frame::Text(Utf8Bytes::from_static("3probe")),
            Packet::Upgrade => Frame::Text(Utf8Bytes::from_static("5")),
            Packet::Noop => Frame::Text(Utf8Bytes::from_static("6")),
        }
    }

    /// Appends the packet's text form to a polling payload (binary as `b` +
    /// base64).
    pub(crate) fn write_text(&self, out: &mut String) {
        use base64::Engine as _;
        match self {
            Packet::Message(Message::Text(text)) => out.push_str(text.packet().as_str()),
            Packet::Message(Message::Binary(data)) => {
                out.push('b');
                base64::engine::general_purpose::STANDARD.encode_string(data, out);
            }
            Packet::Open(json) => {
                out.push('0');
                out.push_str(json);
            }
            Packet::Close => out.push('1'),
            Packet::Ping { probe } => {
                out.push('2');
                if *probe {
                    out.push_str("probe");
                }
            }
            Packet::Pong { probe } => {
                out.push('3');
                if *probe {
                    out.push_str("probe");
                }
            }
            Packet::Upgrade => out.push('5'),
            Packet::Noop => out.push('6'),
        }
    }

    /// An upper bound of the packet's size in a polling payload.
    pub(crate) fn text_len_hint(&self) -> usize {
        match self {
            Packet::Message(Message::Text(text)) => text.packet().as_str().len(),
            Packet::Message(Message::Binary(data)) => 1 + data.len().div_ceil(3) * 4,
            Packet::Open(json) => 1 + json.len(),
            _ => 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_text_type() {
        assert_eq!(Packet::decode_text("1"), Ok(Packet::Close));
        assert_eq!(Packet::decode_text("2"), Ok(Packet::Ping { probe: false }));
        assert_eq!(
            Packet::decode_text("2probe"),
            Ok(Packet::Ping { probe: true })
        );
        assert_eq!(Packet::decode_text("3"), Ok(Packet::Pong { probe: false }));
        assert_eq!(
            Packet::decode_text("3probe"),
            Ok(Packet::Pong { probe: true })
        );
        assert_eq!(
            Packet::decode_text("4héllo"),
            Ok(Packet::Message(Message::text("héllo")))
        );
        assert_eq!(
            Packet::decode_text("4"),
            Ok(Packet::Message(Message::text("")))
        );
        assert_eq!(Packet::decode_text("5"), Ok(Packet::Upgrade));
        assert_eq!(Packet::decode_text("6"), Ok(Packet::Noop));
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(Packet::decode_text(""), Err(PacketError::Empty));
        assert_eq!(
            Packet::decode_text("abc"),
            Err(PacketError::UnknownType('a'))
        );
        assert_eq!(Packet::decode_text("7"), Err(PacketError::UnknownType('7')));
        assert_eq!(Packet::decode_text("0{}"), Err(PacketError::UnexpectedOpen));
        assert_eq!(
            Packet::decode_text("1x"),
            Err(PacketError::UnexpectedData('1'))
        );
        assert_eq!(
            Packet::decode_text("2probes"),
            Err(PacketError::UnexpectedData('2'))
        );
        assert_eq!(Packet::decode_text("é"), Err(PacketError::UnknownType('é')));
    }

    #[test]
    fn text_message_frame_shares_the_received_buffer() {
        let frame = Utf8Bytes::from("4shared");
        let ptr = frame.as_str().as_ptr();
        let Ok(Packet::Message(Message::Text(text))) = Packet::decode_frame(frame) else {
            panic!("not a text message");
        };
        assert_eq!(text.as_str(), "shared");
        assert_eq!(text.packet().as_str().as_ptr(), ptr);
    }

    #[test]
    fn writes_binary_as_base64() {
        let mut out = String::new();
        Packet::Message(Message::binary(vec![1u8, 2, 3, 4])).write_text(&mut out);
        assert_eq!(out, "bAQIDBA==");
    }
}
