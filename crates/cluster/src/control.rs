//! The control channel between the master and one worker, over an
//! inherited Unix stream socketpair (reachable by no other process).
//!
//! Frames are length-prefixed; the first byte says what follows:
//! - `0`: a JSON control message ([`WorkerMessage`] / [`MasterMessage`]);
//! - `1`: a relay frame for the cluster adapter: worker → master
//!   `[1][target u32][flags u8][payload]` (target 0: every other worker,
//!   `u32::MAX`: the master only), master → worker `[1][source u32][payload]`.
//!   The master never looks inside the payload, except the envelope header
//!   of frames flagged for recovery;
//! - `2`: a recovery answer, master → worker:
//!   `[2][request u64][record len u32][record JSON][count u32]([len u32][payload])*`.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The largest control frame.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Relay target: every other worker.
pub(crate) const TO_ALL: u32 = 0;
/// Relay target: the master only (recovery records of local broadcasts).
pub(crate) const TO_MASTER: u32 = u32::MAX;
/// Relay flag: the master keeps this broadcast for connection state recovery.
pub(crate) const FLAG_RECORD: u8 = 1;

/// What a worker tells the master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WorkerMessage {
    /// The worker serves connections from now on.
    Ready,
    /// A session opened on this worker.
    SessionOpened {
        /// Its id.
        sid: String,
    },
    /// A session closed on this worker.
    SessionClosed {
        /// Its id.
        sid: String,
    },
    /// A socket's recoverable state (connected, joined, left, data).
    TrackSession {
        /// The namespace.
        nsp: String,
        /// `{sid, pid, rooms, data}`.
        record: serde_json::Value,
    },
    /// A socket disconnected in a recoverable way: its state is kept.
    PersistSession {
        /// The namespace.
        nsp: String,
        /// `{sid, pid, rooms, data}`.
        record: serde_json::Value,
    },
    /// A socket left for good.
    ForgetSession {
        /// Its private session id.
        pid: String,
    },
    /// Asks for a stream to another worker, to proxy a request for one of
    /// its sessions that arrived on a kept-alive connection.
    Connect {
        /// Request number, echoed in the answer.
        request: u64,
        /// The worker owning the session.
        instance: u32,
        /// The client's address, for the owner.
        remote: Option<String>,
    },
    /// Asks for a disconnected session and the broadcasts it missed.
    Restore {
        /// Request number, echoed in the answer.
        request: u64,
        /// The namespace.
        nsp: String,
        /// The private session id.
        pid: String,
        /// The last offset the client saw.
        offset: String,
    },
}

/// What the master tells a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum MasterMessage {
    /// Close every session cleanly and exit.
    Shutdown,
    /// The workers alive now (the recipient included).
    Peers {
        /// Their instance numbers.
        instances: Vec<u32>,
    },
    /// No stream for a `Connect`: the worker is gone.
    ConnectFailed {
        /// The request number.
        request: u64,
    },
    /// A worker is gone: requests waiting on it stop waiting.
    WorkerGone {
        /// Its instance number.
        instance: u32,
    },
}

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

    fn encode(self, from_worker: bool) -> Bytes {
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

    fn decode(mut frame: Bytes, from_worker: bool) -> Option<Frame> {
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

/// Which end of the channel this is: frames are laid out slightly
/// differently in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The master's end.
    Master,
    /// A worker's end.
    Worker,
}

/// One end of a control channel.
pub(crate) struct ControlChannel {
    framed: Framed<UnixStream, LengthDelimitedCodec>,
    side: Side,
}

impl std::fmt::Debug for ControlChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlChannel")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

impl ControlChannel {
    /// Frames a connected Unix stream.
    pub(crate) fn new(stream: UnixStream, side: Side) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME)
            .new_codec();
        ControlChannel {
            framed: Framed::new(stream, codec),
            side,
        }
    }

    /// Splits into a sending and a receiving half.
    pub(crate) fn split(self) -> (ControlSink, ControlStream) {
        let (sink, stream) = self.framed.split();
        (
            ControlSink {
                sink,
                side: self.side,
            },
            ControlStream {
                stream,
                side: self.side,
            },
        )
    }
}

/// The sending half of a control channel.
pub(crate) struct ControlSink {
    sink: futures_util::stream::SplitSink<Framed<UnixStream, LengthDelimitedCodec>, Bytes>,
    side: Side,
}

impl ControlSink {
    /// Sends a frame.
    pub(crate) async fn send(&mut self, frame: Frame) -> std::io::Result<()> {
        self.sink
            .send(frame.encode(self.side == Side::Worker))
            .await
    }
}

/// The receiving half of a control channel.
pub(crate) struct ControlStream {
    stream: futures_util::stream::SplitStream<Framed<UnixStream, LengthDelimitedCodec>>,
    side: Side,
}

impl ControlStream {
    /// The next frame; none when the other end closed. A malformed frame is
    /// logged and skipped.
    pub(crate) async fn next(&mut self) -> Option<Frame> {
        loop {
            match self.stream.next().await? {
                Ok(bytes) => match Frame::decode(bytes.freeze(), self.side == Side::Master) {
                    Some(frame) => return Some(frame),
                    None => tracing::warn!("malformed control frame skipped"),
                },
                Err(error) => {
                    tracing::warn!(%error, "control channel failed");
                    return None;
                }
            }
        }
    }
}

/// Decodes a JSON control message, logging what does not decode.
pub(crate) fn parse<M: for<'de> Deserialize<'de>>(json: &[u8]) -> Option<M> {
    match serde_json::from_slice(json) {
        Ok(message) => Some(message),
        Err(error) => {
            tracing::warn!(%error, "undecodable control message skipped");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
