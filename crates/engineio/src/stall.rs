//! A bound on how long a write may make no progress: a client that stops
//! reading (or vanished without a reset) fills its TCP window, and every
//! write to it then waits for ever; past the bound the write fails with
//! `TimedOut` and the connection is closed, freeing what it held.
//!
//! Only a stall counts: a slow client whose writes complete a little at a
//! time is never cut, however long a large message takes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// An IO object whose writes fail once they have been pending for `limit`
/// without progress.
#[derive(Debug)]
pub(crate) struct WriteStallLimit<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write first returns pending; dropped at any progress.
    /// Boxed and absent while writes flow: an idle connection pays one
    /// pointer.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStallLimit<T> {
    pub(crate) fn new(inner: T, limit: Duration) -> Self {
        WriteStallLimit {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Passes a ready result through (progress: the stall timer is
    /// dropped); on pending, arms or checks the stall timer.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                // Counted once per connection: the first failed write ends it.
                if self.stalled.take().is_some() {
                    crate::stats::WRITE_STALLS.increment();
                    tracing::debug!(?limit, "closing a connection whose peer does not read");
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no write progress for {limit:?}: the peer does not read"),
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStallLimit<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStallLimit<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        let (_reader, writer) = tokio::io::duplex(16);
        let mut io = WriteStallLimit::new(writer, Duration::from_secs(5));
        let started = tokio::time::Instant::now();
        let error = io.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_making_progress_is_never_cut() {
        let (mut reader, writer) = tokio::io::duplex(16);
        let mut io = WriteStallLimit::new(writer, Duration::from_secs(5));
        let slow = tokio::spawn(async move {
            let mut read = Vec::new();
            let mut chunk = [0u8; 16];
            while read.len() < 256 {
                // Each read comes 4 s after the last: under the limit.
                tokio::time::sleep(Duration::from_secs(4)).await;
                let n = reader.read(&mut chunk).await.unwrap();
                read.extend_from_slice(&chunk[..n]);
            }
            read.len()
        });
        io.write_all(&[7u8; 256]).await.unwrap();
        assert_eq!(slow.await.unwrap(), 256);
    }
}
