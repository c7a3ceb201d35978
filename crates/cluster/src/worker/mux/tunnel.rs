//! Tunnels: byte streams inside a link, for what does not fit a request
//! frame (WebSocket upgrades, bodies of unknown or large length). The
//! forwarder opens one and speaks HTTP/1.1 through it as it would over a
//! connection of its own; the owner serves it like a peer connection.
//! Opening one costs a frame, not a TCP connection, an authentication
//! and a handoff by the owner's master.
//!
//! Each direction has a window: a side sends at most [`WINDOW`] bytes the
//! other has not read yet, and the reader gives credit back (`Window`
//! frames) as its user reads. A tunnel whose reader stalls stops its
//! writer (whose own write-stall limit then applies), never the link, and
//! holds at most a window of memory.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::writer::Writer;
use crate::peer::frame::{self, DATA_MAX, Frame, FrameError, Kind};

/// The bytes a side may send ahead of the other's reading.
pub(super) const WINDOW: usize = 256 * 1024;

/// The tunnels of one link, by stream.
#[derive(Default)]
pub(super) struct Tunnels {
    open: Mutex<HashMap<u32, Arc<Mutex<State>>>>,
}

/// One direction in, one out.
struct State {
    inbound: VecDeque<Bytes>,
    inbound_len: usize,
    /// The other side ended its direction.
    inbound_end: bool,
    read_waker: Option<Waker>,
    /// Bytes read here and not yet credited back.
    unacked: usize,
    /// Bytes this side may still send.
    credit: usize,
    write_waker: Option<Waker>,
    /// This side ended its direction.
    outbound_end: bool,
    /// Abandoned (by either side, or the link ended).
    reset: bool,
}

impl State {
    fn new() -> State {
        State {
            inbound: VecDeque::new(),
            inbound_len: 0,
            inbound_end: false,
            read_waker: None,
            unacked: 0,
            credit: WINDOW,
            write_waker: None,
            outbound_end: false,
            reset: false,
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.read_waker.take() {
            waker.wake();
        }
        if let Some(waker) = self.write_waker.take() {
            waker.wake();
        }
    }
}

impl Tunnels {
    /// Registers tunnel `id` of a link that writes with `writer`.
    pub(super) fn open(self: &Arc<Self>, id: u32, writer: Arc<Writer>) -> Tunnel {
        let state = Arc::new(Mutex::new(State::new()));
        self.open.lock().insert(id, Arc::clone(&state));
        Tunnel {
            id,
            state,
            writer,
            tunnels: Arc::clone(self),
        }
    }

    /// Whether `id` is an open tunnel.
    pub(super) fn contains(&self, id: u32) -> bool {
        self.open.lock().contains_key(&id)
    }

    /// Takes a `Data`, `Window` or `Reset` frame for one of the tunnels;
    /// false when the frame is for no tunnel. More data than the window
    /// allows is the other side breaking the protocol.
    pub(super) fn take(&self, frame: &Frame) -> Result<bool, FrameError> {
        let Some(state) = self.open.lock().get(&frame.stream).cloned() else {
            return Ok(false);
        };
        let mut state = state.lock();
        match frame.kind {
            Kind::Data => {
                let (bytes, end) = frame::read_data(frame.payload.clone())?;
                if state.inbound_len + bytes.len() > WINDOW {
                    return Err(FrameError::Malformed("data past the window"));
                }
                state.inbound_len += bytes.len();
                if !bytes.is_empty() {
                    state.inbound.push_back(bytes);
                }
                state.inbound_end |= end;
            }
            Kind::Window => {
                let credit = frame::read_window(frame.payload.clone())?;
                state.credit = state.credit.saturating_add(credit).min(WINDOW);
            }
            Kind::Reset => state.reset = true,
            _ => return Err(FrameError::Malformed("not a tunnel frame")),
        }
        state.wake();
        Ok(true)
    }

    /// The link ended: every tunnel is reset.
    pub(super) fn reset_all(&self) {
        for (_, state) in self.open.lock().drain() {
            let mut state = state.lock();
            state.reset = true;
            state.wake();
        }
    }
}

/// One end of a tunnel: a byte stream.
pub(crate) struct Tunnel {
    id: u32,
    state: Arc<Mutex<State>>,
    writer: Arc<Writer>,
    tunnels: Arc<Tunnels>,
}

impl AsyncRead for Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut state = self.state.lock();
        if state.inbound.is_empty() {
            if state.inbound_end {
                return Poll::Ready(Ok(()));
            }
            if state.reset {
                return Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            state.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut read = 0;
        while buf.remaining() > 0 {
            let Some(front) = state.inbound.front_mut() else {
                break;
            };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front[..n]);
            front.advance(n);
            if front.is_empty() {
                state.inbound.pop_front();
            }
            read += n;
        }
        state.inbound_len -= read;
        state.unacked += read;
        if state.unacked >= WINDOW / 4 && !state.reset {
            let credit = std::mem::take(&mut state.unacked);
            let id = self.id;
            self.writer.push(|out| frame::put_window(out, id, credit));
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut state = self.state.lock();
        if state.reset || state.outbound_end {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if state.credit == 0 {
            state.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(state.credit).min(DATA_MAX);
        let id = self.id;
        if !self
            .writer
            .push(|out| frame::put_data(out, id, &buf[..n], false))
        {
            state.reset = true;
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        state.credit -= n;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state.lock();
        if !state.outbound_end && !state.reset {
            state.outbound_end = true;
            let id = self.id;
            self.writer.push(|out| frame::put_data(out, id, b"", true));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.tunnels.open.lock().remove(&self.id);
        let state = self.state.lock();
        let ended = state.outbound_end && state.inbound_end;
        if !state.reset && !ended {
            let id = self.id;
            self.writer.push(|out| frame::put_reset(out, id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::frame::decode;
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads `frames` frames off `wire` into `to`.
    async fn pump(to: &Tunnels, wire: &mut tokio::io::DuplexStream, frames: usize) {
        let mut buf = BytesMut::new();
        let mut taken = 0;
        while taken < frames {
            while let Some(frame) = decode(&mut buf).unwrap() {
                assert!(to.take(&frame).unwrap());
                taken += 1;
            }
            if taken < frames {
                assert!(wire.read_buf(&mut buf).await.unwrap() > 0);
            }
        }
    }

    #[tokio::test]
    async fn bytes_cross_a_tunnel_both_ways_and_end_cleanly() {
        let (a_wire, mut a_peer) = tokio::io::duplex(1 << 20);
        let (b_wire, mut b_peer) = tokio::io::duplex(1 << 20);
        let (a_writer, b_writer) = (Writer::new(), Writer::new());
        tokio::spawn(super::super::writer::run(Arc::clone(&a_writer), a_wire));
        tokio::spawn(super::super::writer::run(Arc::clone(&b_writer), b_wire));
        let (a_tunnels, b_tunnels) = (Arc::new(Tunnels::default()), Arc::new(Tunnels::default()));
        let mut a = a_tunnels.open(1, Arc::clone(&a_writer));
        let mut b = b_tunnels.open(1, Arc::clone(&b_writer));

        a.write_all(b"hello").await.unwrap();
        a.shutdown().await.unwrap();
        pump(&b_tunnels, &mut a_peer, 2).await;
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");

        b.write_all(b"back").await.unwrap();
        b.shutdown().await.unwrap();
        pump(&a_tunnels, &mut b_peer, 2).await;
        let mut got = Vec::new();
        a.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"back");
        drop(a);
        drop(b);
        assert!(!a_tunnels.contains(1) && !b_tunnels.contains(1));
    }

    #[tokio::test]
    async fn a_writer_stops_at_the_window_until_the_reader_reads() {
        let (wire, mut peer) = tokio::io::duplex(4 << 20);
        let writer = Writer::new();
        tokio::spawn(super::super::writer::run(Arc::clone(&writer), wire));
        let (ours, theirs) = (Arc::new(Tunnels::default()), Arc::new(Tunnels::default()));
        let mut sender = ours.open(9, Arc::clone(&writer));
        let their_writer = Writer::new();
        let (their_wire, mut their_peer) = tokio::io::duplex(1 << 20);
        tokio::spawn(super::super::writer::run(
            Arc::clone(&their_writer),
            their_wire,
        ));
        let mut receiver = theirs.open(9, Arc::clone(&their_writer));

        let big = vec![1u8; WINDOW + 1];
        let write = sender.write_all(&big);
        tokio::pin!(write);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut write)
                .await
                .is_err(),
            "more than a window went out unread"
        );
        // The window's worth arrives; reading it gives credit back.
        let mut wire_bytes = BytesMut::new();
        while wire_bytes.len() < WINDOW + frame::HEADER_LEN {
            peer.read_buf(&mut wire_bytes).await.unwrap();
        }
        while let Some(frame) = decode(&mut wire_bytes).unwrap() {
            assert!(theirs.take(&frame).unwrap());
        }
        let mut read = vec![0u8; WINDOW];
        receiver.read_exact(&mut read).await.unwrap();
        pump(&ours, &mut their_peer, 1).await;
        write.await.unwrap();
    }

    #[tokio::test]
    async fn data_past_the_window_breaks_the_link_and_resets_reach_both_ends() {
        let tunnels = Arc::new(Tunnels::default());
        let writer = Writer::new();
        let mut tunnel = tunnels.open(3, Arc::clone(&writer));
        let mut buf = BytesMut::new();
        for _ in 0..2 {
            frame::put_data(&mut buf, 3, &vec![0u8; WINDOW / 2], false);
        }
        frame::put_data(&mut buf, 3, b"x", false);
        for _ in 0..2 {
            let within = decode(&mut buf).unwrap().unwrap();
            assert!(tunnels.take(&within).unwrap());
        }
        let second = decode(&mut buf).unwrap().unwrap();
        assert!(tunnels.take(&second).is_err());

        let mut reset = BytesMut::new();
        frame::put_reset(&mut reset, 3);
        assert!(tunnels.take(&decode(&mut reset).unwrap().unwrap()).unwrap());
        let mut sink = vec![0u8; WINDOW];
        tunnel.read_exact(&mut sink).await.unwrap();
        assert_eq!(
            tunnel.read(&mut sink).await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert_eq!(
            tunnel.write(b"late").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let other = tunnels.open(4, Arc::clone(&writer));
        tunnels.reset_all();
        drop(other);
    }
}
