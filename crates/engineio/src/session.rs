//! One Engine.IO session: its send buffer, its transport state and its
//! lifecycle. Transports drain the buffer; the layer above fills it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::engine::EngineShared;
use crate::handler::CloseReason;
use crate::handshake::Handshake;
use crate::packet::{Message, Packet};
use crate::sid::Sid;
use crate::transport::TransportKind;

/// Why a message could not be queued for a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session is closed or closing.
    #[error("the session is closed")]
    Closed,
    /// The client does not read fast enough: `max_buffered_messages`, or
    /// `max_buffered_bytes`, are already waiting. The message was dropped;
    /// the session stays open.
    #[error("the session's send buffer is full")]
    BufferFull,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Open: messages flow both ways.
    Open,
    /// Closed by the server: the transport flushes what is queued, with a
    /// close packet last, then the session is removed.
    Closing(CloseReason),
    /// Gone.
    Closed(CloseReason),
}

/// The mutable part of a session, behind one short-held lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) phase: Phase,
    pub(crate) transport: TransportKind,
    pub(crate) upgrading: bool,
    pub(crate) queue: VecDeque<Packet>,
    /// How many of the queued packets are messages (the bound counts only
    /// those, not pings or noops).
    pub(crate) messages: usize,
    /// The bytes of the queued messages.
    pub(crate) bytes: usize,
    pub(crate) poll_pending: bool,
    pub(crate) post_pending: bool,
    pub(crate) awaiting_pong: bool,
    /// When the awaited pong is due.
    pub(crate) pong_deadline: Option<tokio::time::Instant>,
}

/// A live session, shared by its transports, its heartbeat and the layer
/// above. Obtain it from [`EngineHandler`](crate::EngineHandler) callbacks.
pub struct Session {
    sid: Sid,
    handshake: Handshake,
    shared: Arc<EngineShared>,
    state: Mutex<State>,
    /// Wakes whoever drains the queue: a pending poll, the WebSocket writer.
    pub(crate) wake: Notify,
    /// Wakes the heartbeat when a pong arrives.
    pong: Notify,
    /// Wakes those waiting for the queue to be written out.
    pub(crate) drained: Notify,
    /// Cancelled when the session is gone; ends every task of the session.
    closed: CancellationToken,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sid", &self.sid)
            .field("state", &*self.lock())
            .finish()
    }
}

impl Session {
    pub(crate) fn new(
        sid: Sid,
        handshake: Handshake,
        shared: Arc<EngineShared>,
        transport: TransportKind,
    ) -> Arc<Session> {
        Arc::new(Session {
            sid,
            handshake,
            shared,
            state: Mutex::new(State {
                phase: Phase::Open,
                transport,
                upgrading: false,
                queue: VecDeque::new(),
                messages: 0,
                bytes: 0,
                poll_pending: false,
                post_pending: false,
                awaiting_pong: false,
                pong_deadline: None,
            }),
            wake: Notify::new(),
            pong: Notify::new(),
            drained: Notify::new(),
            closed: CancellationToken::new(),
        })
    }

    /// The session id.
    pub fn id(&self) -> &Sid {
        &self.sid
    }

    /// The request that opened the session.
    pub fn handshake(&self) -> &Handshake {
        &self.handshake
    }

    /// The transport in use now.
    pub fn transport(&self) -> TransportKind {
        self.lock().transport
    }

    /// Whether the session still accepts messages.
    pub fn is_open(&self) -> bool {
        self.lock().phase == Phase::Open
    }

    /// How many packets wait to be sent.
    pub fn buffered(&self) -> usize {
        self.lock().queue.len()
    }

    /// Queues a message for the client.
    ///
    /// Never waits: when the client is too slow and the buffer holds
    /// `max_buffered_messages` (or `max_buffered_bytes`), the message is
    /// refused with [`SendError::BufferFull`] and the session stays open.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_many(std::iter::once(message))
    }

    /// Queues several messages that must stay together and in order (a
    /// Socket.IO packet and its binary attachments): all or none.
    pub fn send_many(
        &self,
        messages: impl ExactSizeIterator<Item = Message>,
    ) -> Result<(), SendError> {
        {
            let mut state = self.lock();
            if state.phase != Phase::Open {
                return Err(SendError::Closed);
            }
            let count = messages.len();
            let config = &self.shared.config;
            if state.messages + count > config.max_buffered_messages {
                crate::stats::BUFFER_FULL.increment();
                return Err(SendError::BufferFull);
            }
            let start = state.queue.len();
            state.queue.extend(messages.map(Packet::Message));
            let bytes: usize = state
                .queue
                .range(start..)
                .map(|packet| match packet {
                    Packet::Message(message) => message.len(),
                    _ => 0,
                })
                .sum();
            // A session with nothing queued always takes one message, so a
            // single message larger than the bound is not refused for ever.
            if state.bytes > 0 && state.bytes + bytes > config.max_buffered_bytes {
                state.queue.truncate(start);
                crate::stats::BUFFER_FULL.increment();
                return Err(SendError::BufferFull);
            }
            state.messages += count;
            state.bytes += bytes;
        }
        self.wake.notify_waiters();
        Ok(())
    }

    /// Closes the session from the server (`forced close`): what is queued is
    /// still delivered, with a close packet last.
    pub fn close(self: &Arc<Self>) {
        self.close_gracefully(CloseReason::ForcedClose);
    }

    /// Waits up to `limit` for a poll to be pending.
    pub(crate) async fn await_poll(&self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().poll_pending {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Waits until everything queued so far has been written to the
    /// transport (or the session is gone). Over polling that takes the
    /// client's next poll: bound the wait with a timeout.
    pub async fn drained(&self) {
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.lock();
                if state.queue.is_empty() || matches!(state.phase, Phase::Closed(_)) {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Waits until the session is gone.
    pub async fn closed(&self) {
        self.closed.cancelled().await
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this short lock leaves consistent data:
        // every critical section is a few field updates.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn shared(&self) -> &Arc<EngineShared> {
        &self.shared
    }

    pub(crate) fn cancelled(&self) -> &CancellationToken {
        &self.closed
    }

    /// Queues a control packet (ping, noop, close), which the buffer bound
    /// does not apply to.
    pub(crate) fn push_control(&self, packet: Packet) -> bool {
        {
            let mut state = self.lock();
            if state.phase != Phase::Open {
                return false;
            }
            if packet == (Packet::Ping { probe: false }) {
                state.awaiting_pong = true;
            }
            state.queue.push_back(packet);
        }
        self.wake.notify_waiters();
        true
    }

    /// Handles a packet from the client, whatever the transport.
    pub(crate) fn on_packet(self: &Arc<Self>, packet: Packet) {
        match packet {
            Packet::Message(message) => {
                if self.is_open() {
                    crate::stats::received(&message);
                    self.shared.handler.on_message(self, message);
                }
            }
            Packet::Pong { probe: false } => {
                let awaited = {
                    let mut state = self.lock();
                    state.pong_deadline = None;
                    std::mem::take(&mut state.awaiting_pong)
                };
                if awaited {
                    self.pong.notify_one();
                }
            }
            Packet::Close => self.close_now(CloseReason::TransportClose),
            // Engine.IO v4 heartbeats go from the server to the client only.
            Packet::Ping { probe: false } => self.close_now(CloseReason::TransportError),
            // Upgrade packets outside an upgrade, noops and stray probes
            // are ignored, as Node does.
            Packet::Ping { probe: true }
            | Packet::Pong { probe: true }
            | Packet::Upgrade
            | Packet::Noop
            | Packet::Open(_) => {}
        }
    }

    /// Ends the session now: nothing more is delivered. A pending poll gets
    /// a close packet, or a noop when the client closed.
    pub(crate) fn close_now(self: &Arc<Self>, reason: CloseReason) {
        let notify_handler = {
            let mut state = self.lock();
            match state.phase {
                Phase::Closed(_) => return,
                Phase::Closing(_) => {
                    state.phase = Phase::Closed(reason);
                    false
                }
                Phase::Open => {
                    state.phase = Phase::Closed(reason);
                    true
                }
            }
        };
        self.finish(reason, notify_handler);
    }

    /// Ends the session after flushing what is queued with a close packet.
    pub(crate) fn close_gracefully(self: &Arc<Self>, reason: CloseReason) {
        {
            let mut state = self.lock();
            if state.phase != Phase::Open {
                return;
            }
            state.phase = Phase::Closing(reason);
            state.queue.push_back(Packet::Close);
        }
        self.wake.notify_waiters();
        self.shared.handler.on_close(self, reason);
        // The close packet waits for the client's next poll, as in Node; a
        // client that never polls again is dropped after the heartbeat's
        // worth of time.
        let session = Arc::clone(self);
        let grace = self.shared.config.ping_interval + self.shared.config.ping_timeout;
        tokio::spawn(async move {
            tokio::select! {
                _ = session.closed.cancelled() => {}
                _ = tokio::time::sleep(grace) => session.close_now(reason),
            }
        });
    }

    /// Called by a transport once the close packet of a closing session has
    /// been written.
    pub(crate) fn close_flushed(self: &Arc<Self>) {
        let reason = match self.lock().phase {
            Phase::Closing(reason) => reason,
            _ => return,
        };
        self.close_now(reason);
    }

    fn finish(self: &Arc<Self>, reason: CloseReason, notify_handler: bool) {
        self.shared.remove(&self.sid);
        if let Some(observer) = &self.shared.config.session_observer {
            observer.closed(&self.sid);
        }
        self.closed.cancel();
        self.wake.notify_waiters();
        self.drained.notify_waiters();
        if notify_handler {
            self.shared.handler.on_close(self, reason);
        }
    }

    /// Whether the pong awaited is overdue: the session is dead even if the
    /// heartbeat task has not run yet, so a request arriving just after the
    /// deadline is not served by a session Node would have closed.
    pub(crate) fn pong_overdue(&self) -> bool {
        let state = self.lock();
        state.awaiting_pong
            && state
                .pong_deadline
                .is_some_and(|at| tokio::time::Instant::now() >= at)
    }

    /// Waits for the pong of the ping just sent; false when none came by
    /// `deadline` or the session ended.
    pub(crate) async fn await_pong(&self, deadline: tokio::time::Instant) -> bool {
        {
            let mut state = self.lock();
            if state.awaiting_pong {
                state.pong_deadline = Some(deadline);
            }
        }
        tokio::select! {
            _ = self.pong.notified() => true,
            _ = tokio::time::sleep_until(deadline) => false,
            _ = self.closed.cancelled() => false,
        }
    }
}
