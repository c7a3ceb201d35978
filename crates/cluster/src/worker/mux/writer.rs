//! The write side of a link: frames are appended to one buffer by any
//! task, and one task writes that buffer out. The writer yields once
//! before each write, so every task the runtime has ready adds its frames
//! first: under load one `write` carries many requests or answers, which
//! is what the link saves over a connection per request (a send, a
//! receive and a wake-up per request on each side).
//!
//! Bounded: past [`HIGH_WATER`] queued bytes, [`Writer::push_with_room`]
//! waits for the writer; only resets (a few bytes each) are queued
//! regardless.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::stats::{FRAMES, WRITES};

/// The most bytes queued before senders wait.
pub(super) const HIGH_WATER: usize = 4 * 1024 * 1024;
/// A write buffer grown past this is let go once written.
const KEEP_CAPACITY: usize = 1024 * 1024;

/// Frames waiting to be written to a link.
pub(super) struct Writer {
    state: Mutex<State>,
    /// Wakes the writing task: bytes were queued, or the link closed.
    wake: Notify,
    /// Wakes senders waiting for room.
    room: Notify,
}

struct State {
    queued: BytesMut,
    closed: bool,
}

impl Writer {
    pub(super) fn new() -> Arc<Writer> {
        Arc::new(Writer {
            state: Mutex::new(State {
                queued: BytesMut::with_capacity(16 * 1024),
                closed: false,
            }),
            wake: Notify::new(),
            room: Notify::new(),
        })
    }

    /// Appends what `frame` writes, at once; false once the link is closed.
    pub(super) fn push(&self, frame: impl FnOnce(&mut BytesMut)) -> bool {
        {
            let mut state = self.state.lock();
            if state.closed {
                return false;
            }
            frame(&mut state.queued);
        }
        FRAMES.fetch_add(1, Relaxed);
        self.wake.notify_one();
        true
    }

    /// Appends what `frame` writes once fewer than [`HIGH_WATER`] bytes
    /// are queued; false once the link is closed.
    pub(super) async fn push_with_room(&self, frame: impl FnOnce(&mut BytesMut)) -> bool {
        let mut frame = Some(frame);
        loop {
            let room = self.room.notified();
            {
                let mut state = self.state.lock();
                if state.closed {
                    return false;
                }
                if state.queued.len() < HIGH_WATER {
                    if let Some(frame) = frame.take() {
                        frame(&mut state.queued);
                    }
                    drop(state);
                    FRAMES.fetch_add(1, Relaxed);
                    self.wake.notify_one();
                    return true;
                }
            }
            room.await;
        }
    }

    /// Closes the link's write side: nothing more is queued or written.
    pub(super) fn close(&self) {
        self.state.lock().closed = true;
        self.wake.notify_one();
        self.room.notify_waiters();
    }

    /// Whether the link is closed.
    pub(super) fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
}

/// Writes what is queued to `stream` until the link closes or a write
/// fails (which closes it).
pub(super) async fn run<W: AsyncWrite + Unpin>(writer: Arc<Writer>, mut stream: W) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        let has_bytes = {
            let state = writer.state.lock();
            if state.closed {
                return;
            }
            !state.queued.is_empty()
        };
        if !has_bytes {
            writer.wake.notified().await;
            continue;
        }
        // Let every task that is ready now add its frames to this write.
        tokio::task::yield_now().await;
        {
            let mut state = writer.state.lock();
            if state.closed {
                return;
            }
            std::mem::swap(&mut state.queued, &mut out);
        }
        writer.room.notify_waiters();
        WRITES.fetch_add(1, Relaxed);
        if stream.write_all(&out).await.is_err() {
            writer.close();
            return;
        }
        out.clear();
        if out.capacity() > KEEP_CAPACITY {
            out = BytesMut::with_capacity(16 * 1024);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn frames_pushed_together_arrive_in_order() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let writer = Writer::new();
        let task = tokio::spawn(run(Arc::clone(&writer), ours));
        for i in 0..100u8 {
            assert!(writer.push(|out| out.extend_from_slice(&[i])));
        }
        let mut got = vec![0u8; 100];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(got, (0..100u8).collect::<Vec<_>>());
        writer.close();
        task.await.unwrap();
        assert!(!writer.push(|out| out.extend_from_slice(b"late")));
    }

    #[tokio::test]
    async fn a_sender_waits_for_room_while_the_other_side_does_not_read() {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let writer = Writer::new();
        let task = tokio::spawn(run(Arc::clone(&writer), ours));
        let big = vec![7u8; HIGH_WATER];
        // The first fills the duplex and the writer's buffer; the second
        // is queued; the third must wait.
        assert!(
            writer
                .push_with_room(|out| out.extend_from_slice(&big))
                .await
        );
        tokio::task::yield_now().await;
        assert!(
            writer
                .push_with_room(|out| out.extend_from_slice(&big))
                .await
        );
        let third = writer.push_with_room(|out| out.extend_from_slice(b"third"));
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut third)
                .await
                .is_err(),
            "queued past the high-water mark"
        );
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            while all.len() < 2 * HIGH_WATER + 5 {
                let n = theirs.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                all.extend_from_slice(&chunk[..n]);
            }
            all
        });
        assert!(third.await);
        let all = reader.await.unwrap();
        assert_eq!(&all[all.len() - 5..], b"third");
        writer.close();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_closes_the_link() {
        let (ours, theirs) = tokio::io::duplex(16);
        drop(theirs);
        let writer = Writer::new();
        let task = tokio::spawn(run(Arc::clone(&writer), ours));
        assert!(writer.push(|out| out.extend_from_slice(b"into the void")));
        task.await.unwrap();
        assert!(writer.is_closed());
    }
}
