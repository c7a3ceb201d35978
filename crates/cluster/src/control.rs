//! The control channel between the master and one worker: length-prefixed
//! JSON messages over an inherited Unix stream socket (a socketpair made by
//! the master, reachable by no other process).

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The largest control frame.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// What a worker tells the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
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
}

/// What the master tells a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MasterMessage {
    /// Close every session cleanly and exit.
    Shutdown,
}

/// One end of a control channel.
pub struct ControlChannel {
    framed: Framed<UnixStream, LengthDelimitedCodec>,
}

impl std::fmt::Debug for ControlChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlChannel").finish_non_exhaustive()
    }
}

impl ControlChannel {
    /// Frames a connected Unix stream.
    pub fn new(stream: UnixStream) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME)
            .new_codec();
        ControlChannel {
            framed: Framed::new(stream, codec),
        }
    }

    /// Splits into a sending and a receiving half.
    pub fn split(self) -> (ControlSink, ControlStream) {
        let (sink, stream) = self.framed.split();
        (ControlSink(sink), ControlStream(stream))
    }
}

/// The sending half of a control channel.
pub struct ControlSink(
    futures_util::stream::SplitSink<Framed<UnixStream, LengthDelimitedCodec>, bytes::Bytes>,
);

impl ControlSink {
    /// Sends a message.
    pub async fn send<M: Serialize>(&mut self, message: &M) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(message).map_err(std::io::Error::other)?;
        self.0.send(bytes.into()).await
    }
}

/// The receiving half of a control channel.
pub struct ControlStream(
    futures_util::stream::SplitStream<Framed<UnixStream, LengthDelimitedCodec>>,
);

impl ControlStream {
    /// The next message; none when the other end closed. A frame that does
    /// not decode is logged and skipped.
    pub async fn next<M: for<'de> Deserialize<'de>>(&mut self) -> Option<M> {
        loop {
            match self.0.next().await? {
                Ok(frame) => match serde_json::from_slice(&frame) {
                    Ok(message) => return Some(message),
                    Err(error) => tracing::warn!(%error, "undecodable control message skipped"),
                },
                Err(error) => {
                    tracing::warn!(%error, "control channel failed");
                    return None;
                }
            }
        }
    }
}
