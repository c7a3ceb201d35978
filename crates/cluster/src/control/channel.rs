//! One end of a control channel: length-delimited frames over the
//! inherited Unix stream, split into a sending and a receiving half.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::Frame;

/// The largest control frame.
const MAX_FRAME: usize = 64 * 1024 * 1024;

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
    /// Buffers a frame, to be written by the next [`flush`](Self::flush)
    /// (or sooner, once the buffer is large).
    pub(crate) async fn feed(&mut self, frame: Frame) -> std::io::Result<()> {
        self.sink
            .feed(frame.encode(self.side == Side::Worker))
            .await
    }

    /// Writes every buffered frame.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        self.sink.flush().await
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
