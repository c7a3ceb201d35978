//! Why a Socket.IO packet could not be decoded.

use super::PacketType;

/// Why a packet, or the binary message after one, was refused.
///
/// Every error is fatal to the connection: Node's server closes the client
/// with reason `parse error`, and the [`Decoder`](super::Decoder) drops any
/// half-received binary packet.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A text message with nothing in it.
    #[error("empty packet")]
    Empty,
    /// A first character that is not a packet type digit `0`-`6`.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// A `BINARY_EVENT`/`BINARY_ACK` without a decimal attachment count.
    #[error("binary packet does not start with an attachment count")]
    MissingAttachmentCount,
    /// An attachment count not followed by `-`.
    #[error("attachment count is not followed by '-'")]
    UnterminatedAttachmentCount,
    /// A binary packet announcing zero attachments.
    #[error("binary packet announces no attachments")]
    NoAttachments,
    /// More attachments than [`DecoderLimits::max_attachments`](super::DecoderLimits).
    #[error("packet announces more than {max} binary attachments")]
    TooManyAttachments {
        /// The configured limit.
        max: usize,
    },
    /// An attachment count (`N-`) on a type that carries no attachments.
    #[error("{0} packet cannot carry binary attachments")]
    AttachmentsOnNonBinaryType(PacketType),
    /// A namespace running into the payload without the `,` that ends it.
    #[error("namespace is not terminated by ','")]
    UnterminatedNamespace,
    /// An acknowledgement id larger than `u64::MAX`.
    #[error("acknowledgement id does not fit in 64 bits")]
    AckIdOverflow,
    /// A payload nesting arrays and objects deeper than
    /// [`DecoderLimits::max_nesting`](super::DecoderLimits).
    #[error("payload nests arrays and objects deeper than {max} levels")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
    /// A payload that is not one valid JSON value (including trailing
    /// characters after it).
    #[error("payload is not valid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// An event, acknowledgement or connect error without a payload.
    #[error("{0} packet requires a payload")]
    MissingPayload(PacketType),
    /// A `CONNECT` payload that is not an object.
    #[error("CONNECT payload must be an object")]
    ConnectPayloadNotObject,
    /// A `DISCONNECT` packet with a payload.
    #[error("DISCONNECT packet must not have a payload")]
    UnexpectedDisconnectPayload,
    /// A `CONNECT_ERROR` payload that is neither a string nor an object.
    #[error("CONNECT_ERROR payload must be a string or an object")]
    InvalidConnectErrorPayload,
    /// An event payload that is not a non-empty array starting with a
    /// string or a number.
    #[error("event payload must be a non-empty array starting with the event name")]
    InvalidEventPayload,
    /// An event named `connect`, `connect_error`, `disconnect`,
    /// `disconnecting`, `newListener` or `removeListener`.
    #[error("event name {0:?} is reserved")]
    ReservedEventName(String),
    /// An acknowledgement payload that is not an array.
    #[error("acknowledgement payload must be an array")]
    AckPayloadNotArray,
    /// A `{"_placeholder":true}` object whose `num` is missing or not a
    /// non-negative integer.
    #[error("binary placeholder has no valid \"num\"")]
    InvalidPlaceholder,
    /// A placeholder naming an attachment the packet does not announce.
    #[error("binary placeholder {num} is out of range for {attachments} attachments")]
    PlaceholderOutOfRange {
        /// The placeholder's `num`.
        num: u64,
        /// The number of attachments the packet announced.
        attachments: usize,
    },
    /// A text message while binary attachments were still expected.
    #[error("text packet received while {missing} binary attachments were still expected")]
    UnexpectedText {
        /// How many attachments had not arrived.
        missing: usize,
    },
    /// A binary message when no binary packet was waiting for attachments.
    #[error("binary message received when no attachment was expected")]
    UnexpectedBinary,
}
