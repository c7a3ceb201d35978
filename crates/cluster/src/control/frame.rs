//! The frames of a control channel and their layout on the wire (see the
//! module above for the layout).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;

/// One frame of the control channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A JSON control message.
    Control(Bytes),
    /// A relay frame: `peer` is the target (worker → master) or the source
    /// (master → worker).
    Relay {
        /// Target or source instance.
        peer: u32,
        /// Flags ([`FLAG_RECORD`]); zero from the master.
        flags: u8,
        /// The envelope, opaque to the master.
        payload: Bytes,
    },
    /// A recovery answer.
    Restored {
        /// The request number.
        request: u64,
        /// The session record (JSON), when found.
        record: Option<Bytes>,
        /// The missed broadcasts' envelopes, oldest first.
        packets: Vec<Bytes>,
    },
}

impl Frame {
    /// A control frame with a JSON message.
    pub(crate) fn control<M: Serialize>(message: &M) -> Frame {
        Frame::Control(
            serde_json::to_vec(message)
                .map(Bytes::from)
                .unwrap_or_default(),
        )
    }

    /// The bytes this frame holds (its payloads), for the byte bounds of
    /// the queues it waits in.
    pub(crate) fn size(&self) -> usize {
        match self {
            Frame::Control(json) => json.len(),
            Frame::Relay { payload, .. } => payload.len(),
            Frame::Restored {
                record, packets, ..
            } => {
                record.as_ref().map_or(0, Bytes::len)
                    + packets.iter().map(Bytes::len).sum::<usize>()
            }
        }
    }

    pub(crate) fn encode(self, from_worker: bool) -> Bytes {
        match self {
            Frame::Control(json) => {
                let mut buf = BytesMut::with_capacity(1 + json.len());
                buf.put_u8(0);
                buf.put_slice(&json);
                buf.freeze()
            }
            Frame::Relay {
                peer,
                flags,
                payload,
            } => {
                let mut buf = BytesMut::with_capacity(6 + payload.len());
                buf.put_u8(1);
                buf.put_u32(peer);
                if from_worker {
                    buf.put_u8(flags);
                }
                buf.put_slice(&payload);
                buf.freeze()
            }
            Frame::Restored {
                request,
                record,
                packets,
            } => {
                let record = record.unwrap_or_default();
                let size = 17 + record.len() + packets.iter().map(|p| 4 + p.len()).sum::<usize>();
                let mut buf = BytesMut::with_capacity(size);
                buf.put_u8(2);
                buf.put_u64(request);
                buf.put_u32(record.len() as u32);
                buf.put_slice(&record);
                buf.put_u32(packets.len() as u32);
                for packet in packets {
                    buf.put_u32(packet.len() as u32);
                    buf.put_slice(&packet);
                }
                buf.freeze()
            }
        }
    }

    pub(crate) fn decode(mut frame: Bytes, from_worker: bool) -> Option<Frame> {
        if frame.is_empty() {
            return None;
        }
        match frame.get_u8() {
            0 => Some(Frame::Control(frame)),
            1 => {
                if frame.len() < 4 + usize::from(from_worker) {
                    return None;
                }
                let peer = frame.get_u32();
                let flags = if from_worker { frame.get_u8() } else { 0 };
                Some(Frame::Relay {
                    peer,
                    flags,
                    payload: frame,
                })
            }
            2 => {
                if frame.len() < 12 {
                    return None;
                }
                let request = frame.get_u64();
                let record_len = frame.get_u32() as usize;
                if frame.len() < record_len + 4 {
                    return None;
                }
                let record = frame.split_to(record_len);
                let count = frame.get_u32() as usize;
                let mut packets = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    if frame.len() < 4 {
                        return None;
                    }
                    let len = frame.get_u32() as usize;
                    if frame.len() < len {
                        return None;
                    }
                    packets.push(frame.split_to(len));
                }
                Some(Frame::Restored {
                    request,
                    record: (!record.is_empty()).then_some(record),
                    packets,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{FLAG_RECORD, MasterMessage};

    #[test]
    fn frames_round_trip_in_both_directions() {
        let frames = [
            Frame::control(&MasterMessage::Shutdown),
            Frame::Relay {
                peer: 7,
                flags: FLAG_RECORD,
                payload: Bytes::from_static(b"abc"),
            },
            Frame::Restored {
                request: 9,
                record: Some(Bytes::from_static(b"{}")),
                packets: vec![Bytes::from_static(b"p1"), Bytes::new()],
            },
            Frame::Restored {
                request: 1,
                record: None,
                packets: vec![],
            },
        ];
        for frame in frames {
            let from_worker = Frame::decode(frame.clone().encode(true), true).unwrap();
            assert_eq!(from_worker, frame);
        }
        let relay = Frame::Relay {
            peer: 3,
            flags: 0,
            payload: Bytes::from_static(b"x"),
        };
        assert_eq!(
            Frame::decode(relay.clone().encode(false), false),
            Some(relay)
        );
    }

    #[test]
    fn truncated_frames_are_refused() {
        let frame = Frame::Restored {
            request: 9,
            record: Some(Bytes::from_static(b"{}")),
            packets: vec![Bytes::from_static(b"packet")],
        }
        .encode(false);
        for len in 0..frame.len() {
            let _ = Frame::decode(frame.slice(..len), false);
        }
        assert_eq!(Frame::decode(Bytes::from_static(&[9, 1, 2]), false), None);
        assert_eq!(Frame::decode(Bytes::from_static(&[1, 0]), true), None);
    }
}
