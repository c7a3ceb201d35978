//! The messages workers exchange through the master for the cluster
//! adapter: a JSON header and binary parts (an encoded packet, attachments).
//!
//! Layout: `[header len u32][header JSON][part count u16]([len u32][bytes])*`.
//! Parts are sliced out of the received frame without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use iocluster_socketio::adapter::{BroadcastOptions, SocketInfo};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a message asks or answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Header {
    /// Deliver an encoded packet (part 0: the Engine.IO text packet, then
    /// attachments) to the targeted local sockets.
    Broadcast {
        /// Namespace.
        nsp: String,
        /// Targets.
        opts: BroadcastOptions,
        /// The recovery offset appended to the event, when recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<String>,
    },
    /// Deliver an event asking for acks (parts: attachments); answer with
    /// the client count, then each reply.
    BroadcastWithAck {
        /// Namespace.
        nsp: String,
        /// Targets.
        opts: BroadcastOptions,
        /// Request number.
        request: u64,
        /// The event arguments, event name first.
        data: Value,
    },
    /// How many clients a worker sent a broadcast with acks to.
    BroadcastClientCount {
        /// Request number.
        request: u64,
        /// Clients.
        count: usize,
    },
    /// One client's reply (parts: attachments).
    BroadcastAck {
        /// Request number.
        request: u64,
        /// The reply's arguments.
        args: Vec<Value>,
    },
    /// Make the targeted sockets join rooms.
    SocketsJoin {
        /// Namespace.
        nsp: String,
        /// Targets.
        opts: BroadcastOptions,
        /// Rooms.
        rooms: Vec<String>,
    },
    /// Make the targeted sockets leave rooms.
    SocketsLeave {
        /// Namespace.
        nsp: String,
        /// Targets.
        opts: BroadcastOptions,
        /// Rooms.
        rooms: Vec<String>,
    },
    /// Disconnect the targeted sockets.
    DisconnectSockets {
        /// Namespace.
        nsp: String,
        /// Targets.
        opts: BroadcastOptions,
        /// Close their whole connection.
        close: bool,
    },
    /// List the targeted sockets.
    FetchSockets {
        /// Namespace.
        nsp: String,
        /// Targets.
        opts: BroadcastOptions,
        /// Request number.
        request: u64,
    },
    /// The sockets of one worker.
    FetchSocketsResponse {
        /// Request number.
        request: u64,
        /// Its sockets.
        sockets: Vec<SocketInfo>,
    },
    /// A server-side event (parts: attachments).
    ServerSideEmit {
        /// Namespace.
        nsp: String,
        /// Request number when an ack is wanted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<u64>,
        /// Event name, then arguments.
        args: Vec<Value>,
    },
    /// This worker has no such namespace: the requester stops waiting for it
    /// (Node counts only the servers that have the namespace).
    Absent {
        /// Request number.
        request: u64,
    },
    /// A worker's ack to a server-side event (parts: attachments).
    ServerSideEmitResponse {
        /// Request number.
        request: u64,
        /// The reply's arguments.
        args: Vec<Value>,
    },
}

impl Header {
    /// The request an answer belongs to.
    pub(crate) fn answers(&self) -> Option<u64> {
        match self {
            Header::BroadcastClientCount { request, .. }
            | Header::BroadcastAck { request, .. }
            | Header::FetchSocketsResponse { request, .. }
            | Header::ServerSideEmitResponse { request, .. }
            | Header::Absent { request } => Some(*request),
            _ => None,
        }
    }
}

/// Why an envelope could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// Shorter than its lengths say.
    #[error("truncated envelope")]
    Truncated,
    /// The header is not a known message.
    #[error("bad envelope header: {0}")]
    Header(String),
}

/// Writes an envelope.
pub(crate) fn encode(header: &Header, parts: &[Bytes]) -> Bytes {
    let json = serde_json::to_vec(header).unwrap_or_default();
    let size = 6 + json.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut buf = BytesMut::with_capacity(size);
    buf.put_u32(json.len() as u32);
    buf.put_slice(&json);
    buf.put_u16(parts.len() as u16);
    for part in parts {
        buf.put_u32(part.len() as u32);
        buf.put_slice(part);
    }
    buf.freeze()
}

/// Reads only the header (what the master needs to keep recovery records).
pub(crate) fn decode_header(envelope: &Bytes) -> Result<Header, EnvelopeError> {
    let mut rest = envelope.clone();
    header(&mut rest)
}

fn header(rest: &mut Bytes) -> Result<Header, EnvelopeError> {
    if rest.len() < 4 {
        return Err(EnvelopeError::Truncated);
    }
    let len = rest.get_u32() as usize;
    if rest.len() < len {
        return Err(EnvelopeError::Truncated);
    }
    let json = rest.split_to(len);
    serde_json::from_slice(&json).map_err(|e| EnvelopeError::Header(e.to_string()))
}

/// Reads an envelope; the parts share the frame's memory.
pub(crate) fn decode(envelope: Bytes) -> Result<(Header, Vec<Bytes>), EnvelopeError> {
    let mut rest = envelope;
    let header = header(&mut rest)?;
    if rest.len() < 2 {
        return Err(EnvelopeError::Truncated);
    }
    let count = rest.get_u16() as usize;
    // Each part takes at least its 4-byte length: reserve no more than the
    // input can hold, whatever the count says.
    let mut parts = Vec::with_capacity(count.min(rest.len() / 4));
    for _ in 0..count {
        if rest.len() < 4 {
            return Err(EnvelopeError::Truncated);
        }
        let len = rest.get_u32() as usize;
        if rest.len() < len {
            return Err(EnvelopeError::Truncated);
        }
        parts.push(rest.split_to(len));
    }
    Ok((header, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_share_memory() {
        let header = Header::Broadcast {
            nsp: "/".into(),
            opts: BroadcastOptions {
                rooms: vec!["r".into()],
                ..Default::default()
            },
            offset: Some("o-1".into()),
        };
        let parts = vec![
            Bytes::from_static(b"42[\"x\"]"),
            Bytes::from(vec![1u8; 300]),
        ];
        let envelope = encode(&header, &parts);
        assert_eq!(decode_header(&envelope), Ok(header.clone()));
        let (decoded, decoded_parts) = decode(envelope.clone()).unwrap();
        assert_eq!(decoded, header);
        assert_eq!(decoded_parts, parts);
        let start = envelope.as_ptr() as usize;
        let part = decoded_parts[1].as_ptr() as usize;
        assert!(part >= start && part < start + envelope.len());
    }

    #[test]
    fn truncated_or_garbage_envelopes_are_errors() {
        let envelope = encode(
            &Header::BroadcastClientCount {
                request: 1,
                count: 2,
            },
            &[Bytes::from_static(b"abc")],
        );
        for len in 0..envelope.len() {
            assert!(decode(envelope.slice(..len)).is_err());
        }
        assert!(matches!(
            decode(Bytes::from_static(b"\0\0\0\x02{}\0\0")),
            Err(EnvelopeError::Header(_))
        ));
    }
}
