//! Decoding the packets of one connection: text packets, and the binary
//! attachments that follow a `BINARY_EVENT` or `BINARY_ACK`.

use bytes::Bytes;
use serde_json::Value;

use super::{Packet, ParseError, header, nesting, payload};

/// Limits on what a client may send, against memory and stack exhaustion.
///
/// ```
/// use iocluster_socketio::parser::DecoderLimits;
/// let limits = DecoderLimits { max_attachments: 8, ..DecoderLimits::default() };
/// assert_eq!(limits.max_nesting, 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Most binary attachments one packet may announce. Default 64 (Node's
    /// `maxAttachments` defaults to 10).
    pub max_attachments: usize,
    /// Deepest nesting of arrays and objects in a payload; the payload array
    /// of an event is depth 1. Default 64. serde_json refuses depths over 128
    /// whatever this says.
    pub max_nesting: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_attachments: 64,
            max_nesting: 64,
        }
    }
}

/// Where the decoder is between two messages.
#[derive(Debug)]
enum State {
    /// The next message must be a text packet.
    Ready,
    /// A binary packet's header arrived; its attachments are arriving.
    Reassembling {
        /// The packet, its attachments so far in `attachments`.
        packet: Packet,
        /// How many attachments the header announced.
        expected: usize,
    },
}

/// Decodes the Socket.IO packets of one connection, in order.
///
/// A `BINARY_EVENT` or `BINARY_ACK` header gives `Ok(None)`; the packet comes
/// out of the call that passes its last attachment. Any error means the
/// client broke the protocol and the connection should be closed; the
/// decoder forgets any half-received packet.
///
/// ```
/// use iocluster_socketio::parser::{Decoder, DecoderLimits, PacketType};
///
/// let mut decoder = Decoder::new(DecoderLimits::default());
/// let packet = decoder.decode_text(r#"2/chat,7["hello"]"#)?.expect("a whole packet");
/// assert_eq!((packet.kind, packet.nsp.as_str(), packet.id), (PacketType::Event, "/chat", Some(7)));
///
/// let header = r#"51-["file",{"_placeholder":true,"num":0}]"#;
/// assert!(decoder.decode_text(header)?.is_none());
/// let packet = decoder.decode_binary(bytes::Bytes::from_static(b"\x01\x02"))?.expect("complete");
/// assert_eq!(packet.kind, PacketType::BinaryEvent);
/// assert_eq!(packet.attachments[0].as_ref(), b"\x01\x02");
/// # Ok::<(), iocluster_socketio::parser::ParseError>(())
/// ```
#[derive(Debug)]
pub struct Decoder {
    limits: DecoderLimits,
    state: State,
}

impl Decoder {
    /// A decoder for a new connection.
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder {
            limits,
            state: State::Ready,
        }
    }

    /// The limits this decoder enforces.
    pub fn limits(&self) -> DecoderLimits {
        self.limits
    }

    /// How many binary attachments must arrive before the next text packet.
    pub fn awaited_attachments(&self) -> usize {
        match &self.state {
            State::Ready => 0,
            State::Reassembling { packet, expected } => {
                expected.saturating_sub(packet.attachments.len())
            }
        }
    }

    /// Decodes a text message (the Socket.IO packet, without Engine.IO's
    /// `4`).
    ///
    /// Returns the packet, or `None` for the header of a binary packet whose
    /// attachments are to follow. Placeholders in a binary packet are checked
    /// against its attachment count here, before any attachment is buffered.
    pub fn decode_text(&mut self, text: &str) -> Result<Option<Packet>, ParseError> {
        let missing = self.awaited_attachments();
        if missing > 0 {
            self.state = State::Ready;
            return Err(ParseError::UnexpectedText { missing });
        }
        let header = header::split(text, self.limits.max_attachments)?;
        let data = match header.payload {
            Some(json) => Some(self.parse_json(json)?),
            None => None,
        };
        payload::validate(header.kind, data.as_ref())?;
        if let (true, Some(data)) = (header.attachments > 0, &data) {
            payload::check_placeholders(data, header.attachments)?;
        }
        let packet = Packet {
            kind: header.kind,
            nsp: header.nsp.to_owned(),
            id: header.id,
            data,
            attachments: Vec::with_capacity(header.attachments),
        };
        if header.attachments == 0 {
            return Ok(Some(packet));
        }
        self.state = State::Reassembling {
            packet,
            expected: header.attachments,
        };
        Ok(None)
    }

    /// Decodes a binary message: the next attachment of the binary packet
    /// being received.
    ///
    /// Returns the complete packet with its last attachment, `None` before.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, ParseError> {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Ready => Err(ParseError::UnexpectedBinary),
            State::Reassembling {
                mut packet,
                expected,
            } => {
                packet.attachments.push(data);
                if packet.attachments.len() < expected {
                    self.state = State::Reassembling { packet, expected };
                    return Ok(None);
                }
                Ok(Some(packet))
            }
        }
    }

    /// Parses a payload within the nesting limit.
    fn parse_json(&self, json: &str) -> Result<Value, ParseError> {
        nesting::check(json, self.limits.max_nesting)?;
        serde_json::from_str(json).map_err(ParseError::InvalidJson)
    }
}

impl Default for Decoder {
    /// A decoder with [`DecoderLimits::default`].
    fn default() -> Self {
        Decoder::new(DecoderLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::PacketType;

    #[test]
    fn binary_packet_comes_out_with_its_last_attachment() {
        let mut decoder = Decoder::default();
        let header =
            r#"52-/admin,7["a",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#;
        assert!(matches!(decoder.decode_text(header), Ok(None)));
        assert_eq!(decoder.awaited_attachments(), 2);
        assert!(matches!(
            decoder.decode_binary(Bytes::from_static(b"first")),
            Ok(None)
        ));
        assert_eq!(decoder.awaited_attachments(), 1);
        let packet = match decoder.decode_binary(Bytes::from_static(b"second")) {
            Ok(Some(packet)) => packet,
            other => panic!("{other:?}"),
        };
        assert_eq!(packet.kind, PacketType::BinaryEvent);
        assert_eq!((packet.nsp.as_str(), packet.id), ("/admin", Some(7)));
        assert_eq!(
            packet.attachments,
            [Bytes::from_static(b"first"), Bytes::from_static(b"second")]
        );
        assert_eq!(decoder.awaited_attachments(), 0);
        assert!(matches!(decoder.decode_text(r#"2["next"]"#), Ok(Some(_))));
    }

    #[test]
    fn text_while_attachments_are_missing_is_refused() {
        let mut decoder = Decoder::default();
        assert!(matches!(decoder.decode_text(r#"52-["a"]"#), Ok(None)));
        assert!(matches!(decoder.decode_binary(Bytes::new()), Ok(None)));
        assert!(matches!(
            decoder.decode_text(r#"2["b"]"#),
            Err(ParseError::UnexpectedText { missing: 1 })
        ));
        // The half-received packet is forgotten.
        assert_eq!(decoder.awaited_attachments(), 0);
        assert!(matches!(
            decoder.decode_binary(Bytes::new()),
            Err(ParseError::UnexpectedBinary)
        ));
    }

    #[test]
    fn binary_without_a_binary_packet_is_refused() {
        let mut decoder = Decoder::default();
        assert!(matches!(
            decoder.decode_binary(Bytes::new()),
            Err(ParseError::UnexpectedBinary)
        ));
        assert!(matches!(decoder.decode_text(r#"2["a"]"#), Ok(Some(_))));
        assert!(matches!(
            decoder.decode_binary(Bytes::new()),
            Err(ParseError::UnexpectedBinary)
        ));
    }

    #[test]
    fn extra_attachment_after_a_complete_packet_is_refused() {
        let mut decoder = Decoder::default();
        assert!(matches!(decoder.decode_text(r#"51-["a"]"#), Ok(None)));
        assert!(matches!(decoder.decode_binary(Bytes::new()), Ok(Some(_))));
        assert!(matches!(
            decoder.decode_binary(Bytes::new()),
            Err(ParseError::UnexpectedBinary)
        ));
    }

    #[test]
    fn bad_placeholders_are_refused_before_attachments_are_buffered() {
        let mut decoder = Decoder::default();
        assert!(matches!(
            decoder.decode_text(r#"51-["a",{"_placeholder":true,"num":1}]"#),
            Err(ParseError::PlaceholderOutOfRange {
                num: 1,
                attachments: 1
            })
        ));
        assert_eq!(decoder.awaited_attachments(), 0);
        assert!(matches!(
            decoder.decode_text(r#"51-["a",{"_placeholder":true}]"#),
            Err(ParseError::InvalidPlaceholder)
        ));
        assert!(matches!(
            decoder.decode_text(r#"61-[{"_placeholder":true,"num":-1}]"#),
            Err(ParseError::InvalidPlaceholder)
        ));
        assert!(matches!(
            decoder.decode_text(r#"61-[{"_placeholder":true,"num":18446744073709551615}]"#),
            Err(ParseError::PlaceholderOutOfRange { .. })
        ));
    }

    #[test]
    fn decoder_recovers_for_the_next_packet_after_an_error() {
        let mut decoder = Decoder::default();
        assert!(decoder.decode_text("2[").is_err());
        assert!(matches!(decoder.decode_text(r#"2["a"]"#), Ok(Some(_))));
    }
}
