//! Frames waiting to be written to the other end of a control channel.
//!
//! Both ends queue frames without waiting (a broadcast must not wait for
//! the master, the master must not wait for a slow worker) and one task per
//! channel writes them. The queue is bounded twice: by frames, and by the
//! bytes they hold, so that a peer that stops reading costs at most
//! [`MAX_BYTES`] of memory however large the messages are. Past either
//! bound a frame is dropped, counted and logged (a dropped frame is a lost
//! broadcast or request for the other side, which then times out as it would
//! if the worker had died).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::control::{ControlSink, Frame};

/// The most frames one queue holds.
pub(crate) const MAX_FRAMES: usize = 65_536;
/// The most bytes of frames one queue holds.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;

/// The sending side of a bounded queue of frames; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    sender: mpsc::Sender<Frame>,
    counters: Arc<Counters>,
}

/// What a queue holds and has dropped.
#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicUsize,
    max_bytes: usize,
    dropped: AtomicU64,
}

/// The receiving side, for the writer task.
#[derive(Debug)]
pub(crate) struct OutboxReceiver {
    receiver: mpsc::Receiver<Frame>,
    counters: Arc<Counters>,
}

impl Outbox {
    /// A queue of at most `frames` frames and `bytes` bytes.
    pub(crate) fn bounded(frames: usize, bytes: usize) -> (Outbox, OutboxReceiver) {
        let (sender, receiver) = mpsc::channel(frames.max(1));
        let counters = Arc::new(Counters {
            max_bytes: bytes,
            ..Counters::default()
        });
        (
            Outbox {
                sender,
                counters: Arc::clone(&counters),
            },
            OutboxReceiver { receiver, counters },
        )
    }

    /// A queue with the default bounds.
    pub(crate) fn new() -> (Outbox, OutboxReceiver) {
        Outbox::bounded(MAX_FRAMES, MAX_BYTES)
    }

    /// Queues a frame; false (and the frame is dropped) when the queue is
    /// full or its writer is gone.
    pub(crate) fn send(&self, frame: Frame) -> bool {
        let size = frame.size();
        let held = self.counters.bytes.fetch_add(size, Ordering::Relaxed) + size;
        let error = if held > self.counters.max_bytes && size > 0 {
            Some("byte bound reached")
        } else {
            match self.sender.try_send(frame) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some("frame bound reached"),
                Err(mpsc::error::TrySendError::Closed(_)) => Some("channel closed"),
            }
        };
        let Some(error) = error else {
            return true;
        };
        self.counters.bytes.fetch_sub(size, Ordering::Relaxed);
        let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // A full queue drops many frames in a row: log the first and then
        // every thousandth, not each.
        if dropped == 1 || dropped % 1000 == 0 {
            tracing::warn!(error, dropped, "control frame dropped");
        }
        false
    }

    /// Sends a JSON control message.
    pub(crate) fn control<M: serde::Serialize>(&self, message: &M) -> bool {
        self.send(Frame::control(message))
    }

    /// Frames dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Bytes queued now.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.counters.bytes.load(Ordering::Relaxed)
    }
}

/// The most frames written with one flush: a burst is written in a few
/// system calls, without holding back the first of the next one for long.
const FRAMES_PER_WRITE: usize = 256;

impl OutboxReceiver {
    /// Takes a frame off the queue, freeing its bytes.
    fn take(&self, frame: Frame) -> Frame {
        self.counters
            .bytes
            .fetch_sub(frame.size(), Ordering::Relaxed);
        frame
    }

    /// The next frame; none once every sender is gone.
    async fn recv(&mut self) -> Option<Frame> {
        let frame = self.receiver.recv().await?;
        Some(self.take(frame))
    }

    /// A frame already queued, if any.
    fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.receiver.try_recv().ok()?;
        Some(self.take(frame))
    }

    /// Writes frames to `sink` until every sender is gone, the channel
    /// fails, or `stop` is cancelled; then writes what is already queued
    /// (the last session reports of a worker that is leaving) and returns.
    /// The frames queued by the time the writer runs go out together: one
    /// system call for a burst rather than one per frame.
    pub(crate) async fn write_to(mut self, mut sink: ControlSink, stop: CancellationToken) {
        loop {
            let frame = tokio::select! {
                frame = self.recv() => frame,
                _ = stop.cancelled() => break,
            };
            let Some(frame) = frame else { return };
            if self.write_burst(&mut sink, frame).await.is_err() {
                return;
            }
        }
        while let Some(frame) = self.try_recv() {
            if self.write_burst(&mut sink, frame).await.is_err() {
                return;
            }
        }
    }

    /// Writes `first` and up to [`FRAMES_PER_WRITE`] frames queued behind
    /// it, then flushes.
    async fn write_burst(&mut self, sink: &mut ControlSink, first: Frame) -> std::io::Result<()> {
        sink.feed(first).await?;
        for _ in 1..FRAMES_PER_WRITE {
            let Some(frame) = self.try_recv() else { break };
            sink.feed(frame).await?;
        }
        sink.flush().await
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn relay(len: usize) -> Frame {
        Frame::Relay {
            peer: 1,
            flags: 0,
            payload: Bytes::from(vec![b'x'; len]),
        }
    }

    #[test]
    fn a_queue_past_its_byte_bound_drops_and_counts() {
        let (outbox, _receiver) = Outbox::bounded(100, 1000);
        assert!(outbox.send(relay(600)));
        assert!(!outbox.send(relay(600)), "1200 bytes > 1000");
        assert!(outbox.send(relay(400)));
        assert_eq!(outbox.dropped(), 1);
        assert_eq!(outbox.queued_bytes(), 1000);
    }

    #[test]
    fn a_queue_past_its_frame_bound_drops_and_counts() {
        let (outbox, _receiver) = Outbox::bounded(2, 1 << 20);
        assert!(outbox.send(relay(1)));
        assert!(outbox.send(relay(1)));
        assert!(!outbox.send(relay(1)));
        assert_eq!(outbox.dropped(), 1);
        assert_eq!(outbox.queued_bytes(), 2, "a refused frame holds nothing");
    }

    #[tokio::test]
    async fn a_burst_longer_than_one_write_arrives_whole_and_in_order() {
        use crate::control::{ControlChannel, Side};
        let (ours, theirs) = tokio::net::UnixStream::pair().expect("a socket pair");
        let (sink, _) = ControlChannel::new(ours, Side::Worker).split();
        let (_, mut stream) = ControlChannel::new(theirs, Side::Master).split();
        let (outbox, receiver) = Outbox::new();
        let frames: Vec<Frame> = (0..FRAMES_PER_WRITE * 2 + 3)
            .map(|i| Frame::Control(Bytes::from(format!("{{\"n\":{i}}}"))))
            .collect();
        for frame in &frames {
            assert!(outbox.send(frame.clone()));
        }
        drop(outbox);
        receiver.write_to(sink, CancellationToken::new()).await;
        for frame in frames {
            assert_eq!(stream.next().await, Some(frame));
        }
        assert_eq!(stream.next().await, None, "nothing more, and the end");
    }

    #[tokio::test]
    async fn taking_a_frame_frees_its_bytes() {
        let (outbox, mut receiver) = Outbox::bounded(10, 1000);
        assert!(outbox.send(relay(900)));
        assert!(receiver.recv().await.is_some());
        assert_eq!(outbox.queued_bytes(), 0);
        assert!(outbox.send(relay(900)));
    }
}
