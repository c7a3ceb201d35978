//! WebSocket: a session opened directly over WebSocket, or a polling session
//! upgraded (`2probe`/`3probe`, then `5`).

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket};
use futures_util::SinkExt;

use crate::handler::CloseReason;
use crate::packet::{Message, Packet};
use crate::session::{Phase, Session};
use crate::transport::TransportKind;

/// Close code for a message over `max_payload`, as Node's `ws` sends it.
const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;

/// How often a noop goes to the polling transport while an upgrade waits
/// for `5` (Node's `checkIntervalTimer`, 100 ms).
const UPGRADE_NOOP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs a session that was opened over WebSocket: sends the open packet,
/// then serves the session until it ends. The socket comes boxed: these
/// futures live as long as their sessions, and each layer of them keeps its
/// arguments beside its own state.
pub(crate) async fn serve_new(session: Arc<Session>, open: Packet, mut socket: Box<WebSocket>) {
    let sent = Box::pin(tokio::time::timeout(
        session.shared().config.ping_timeout,
        socket.send(open.into_frame()),
    ))
    .await;
    if !matches!(sent, Ok(Ok(()))) {
        session.close_now(CloseReason::TransportError);
        return;
    }
    serve(session, socket).await;
}

/// Runs the upgrade of a polling session, then serves it over WebSocket.
/// A failed or late upgrade closes this WebSocket and leaves the session on
/// polling.
pub(crate) async fn serve_upgrade(session: Arc<Session>, mut socket: Box<WebSocket>) {
    let timeout = session.shared().config.upgrade_timeout;
    let upgraded = tokio::select! {
        // Boxed: the probe's state is not kept in every session's task.
        upgraded = Box::pin(probe(&session, &mut socket)) => upgraded,
        _ = tokio::time::sleep(timeout) => false,
        _ = session.cancelled().cancelled() => false,
    };
    if !upgraded {
        session.lock().upgrading = false;
        send_close(&mut socket, Frame::Close(None)).await;
        return;
    }
    {
        let mut state = session.lock();
        state.transport = TransportKind::WebSocket;
        state.upgrading = false;
        state.queue.retain(|packet| *packet != Packet::Noop);
    }
    crate::stats::UPGRADES.increment();
    // A poll still pending ends with a noop.
    session.wake.notify_waiters();
    session.shared().handler.on_upgrade(&session);
    serve(session, socket).await;
}

/// The upgrade handshake: `2probe` answered with `3probe`, then `5`.
/// Anything else fails the upgrade. Until `5` arrives a noop goes to the
/// polling transport every 100 ms, as Node does: the client waits for its
/// pending poll to end before it sends `5`, and a single noop can reach it
/// before `3probe` (another connection), end the poll it had then, and
/// leave the next one pending until the next ping.
async fn probe(session: &Arc<Session>, socket: &mut WebSocket) -> bool {
    let mut probed = false;
    loop {
        let received = if probed {
            tokio::select! {
                received = socket.recv() => received,
                _ = tokio::time::sleep(UPGRADE_NOOP_INTERVAL) => {
                    // Only to a poll waiting with nothing to send: a noop
                    // queued with nobody polling would outlive the upgrade.
                    let waiting = {
                        let state = session.lock();
                        state.poll_pending && state.queue.is_empty()
                    };
                    if waiting {
                        session.push_control(Packet::Noop);
                    }
                    continue;
                }
            }
        } else {
            socket.recv().await
        };
        let frame = match received {
            Some(Ok(Frame::Text(text))) => text,
            Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => continue,
            _ => return false,
        };
        match (Packet::decode_frame(frame), probed) {
            (Ok(Packet::Ping { probe: true }), false) => {
                let pong = Packet::Pong { probe: true }.into_frame();
                if socket.send(pong).await.is_err() {
                    return false;
                }
                probed = true;
                session.push_control(Packet::Noop);
            }
            (Ok(Packet::Upgrade), true) => return true,
            _ => return false,
        }
    }
}

/// Serves a session over WebSocket: writes what is queued, reads frames,
/// until the session or the connection ends.
async fn serve(session: Arc<Session>, mut socket: Box<WebSocket>) {
    let mut batch = Vec::new();
    loop {
        let notified = session.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let phase = {
            let mut state = session.lock();
            batch.extend(state.queue.drain(..));
            state.messages = 0;
            state.bytes = 0;
            state.phase
        };
        let flushed_close = batch.last() == Some(&Packet::Close);
        // Everything queued goes out in one write. (Node writes frame by
        // frame; a client that needs CONNECT apart from the first emits gets
        // it apart: the Socket.IO layer waits for CONNECT to be written.)
        if !batch.is_empty() {
            // Boxed: the write's state is kept only while writing, not in
            // every idle session's task.
            match Box::pin(write_batch(&session, &mut socket, &mut batch)).await {
                Written::All => {}
                Written::Failed => {
                    session.close_now(CloseReason::TransportError);
                    return;
                }
                Written::SessionEnded => {
                    // The session is gone (heartbeat, server close,
                    // shutdown): its connection goes now, with whatever
                    // the client did not take.
                    crate::stats::CLOSED_WITH_UNSENT.increment();
                    tracing::debug!(sid = %session.id(), "session ended with messages unsent: connection closed");
                    return;
                }
            }
        }
        session.drained.notify_waiters();
        match phase {
            Phase::Closed(_) => {
                send_close(&mut socket, Frame::Close(None)).await;
                return;
            }
            Phase::Closing(_) if flushed_close => {
                send_close(&mut socket, Frame::Close(None)).await;
                session.close_flushed();
                return;
            }
            _ => {}
        }
        tokio::select! {
            biased;
            _ = &mut notified => {}
            frame = socket.recv() => {
                if let Read::Done(close) = read(&session, frame) {
                    if let Some(close) = close {
                        send_close(&mut socket, close).await;
                    }
                    return;
                }
            }
        }
    }
}

/// How a batch write ended.
enum Written {
    /// Every frame is out.
    All,
    /// The connection failed (or stalled past its limit).
    Failed,
    /// The session ended while the write waited.
    SessionEnded,
}

/// Writes `batch` in one flush, unless the session ends first: a client
/// that stopped reading must not keep a dead session's connection, nor what
/// it queued, a moment longer.
async fn write_batch(
    session: &Session,
    socket: &mut WebSocket,
    batch: &mut Vec<Packet>,
) -> Written {
    crate::stats::sent(batch.iter());
    let write = async {
        for packet in batch.drain(..) {
            socket.feed(packet.into_frame()).await?;
        }
        socket.flush().await
    };
    let written = tokio::select! {
        written = write => written,
        _ = session.cancelled().cancelled() => {
            batch.clear();
            return Written::SessionEnded;
        }
    };
    match written {
        Ok(()) => Written::All,
        Err(error) => {
            batch.clear();
            tracing::debug!(sid = %session.id(), %error, "websocket write failed");
            Written::Failed
        }
    }
}

/// What to do after a read.
enum Read {
    /// Go on.
    Continue,
    /// The connection is done; send this close frame first, if any.
    Done(Option<Frame>),
}

/// Handles one read from the WebSocket.
fn read(session: &Arc<Session>, frame: Option<Result<Frame, axum::Error>>) -> Read {
    match frame {
        Some(Ok(Frame::Text(text))) => match Packet::decode_frame(text) {
            Ok(packet) => {
                session.on_packet(packet);
                Read::Continue
            }
            Err(error) => {
                tracing::debug!(sid = %session.id(), %error, "malformed websocket packet");
                session.close_now(CloseReason::ParseError);
                Read::Done(Some(Frame::Close(None)))
            }
        },
        Some(Ok(Frame::Binary(data))) => {
            session.on_packet(Packet::Message(Message::Binary(data)));
            Read::Continue
        }
        Some(Ok(Frame::Ping(_) | Frame::Pong(_))) => Read::Continue,
        Some(Ok(Frame::Close(_))) | None => {
            session.close_now(CloseReason::TransportClose);
            Read::Done(None)
        }
        Some(Err(error)) => {
            let error = error.into_inner();
            let failure = error.downcast_ref::<tungstenite::Error>();
            tracing::debug!(sid = %session.id(), %error, "websocket read failed");
            // A connection dropped without a close frame is a plain close for
            // Node (`ws` reports code 1006); protocol violations are errors.
            let reason = match failure {
                Some(
                    tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    )
                    | tungstenite::Error::Io(_)
                    | tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed,
                ) => CloseReason::TransportClose,
                _ => CloseReason::TransportError,
            };
            session.close_now(reason);
            let too_big = matches!(failure, Some(tungstenite::Error::Capacity(_)));
            Read::Done(too_big.then(|| {
                Frame::Close(Some(CloseFrame {
                    code: CLOSE_MESSAGE_TOO_BIG,
                    reason: Utf8Bytes::from_static("Max payload size exceeded"),
                }))
            }))
        }
    }
}

/// How long a close frame may take to go out: a client that does not read
/// does not get to keep the connection open.
const CLOSE_FRAME_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends a close frame, at most for [`CLOSE_FRAME_LIMIT`]; boxed so that
/// this rare await adds nothing to the state every session's task keeps.
async fn send_close(socket: &mut WebSocket, frame: Frame) {
    let _ = Box::pin(tokio::time::timeout(CLOSE_FRAME_LIMIT, socket.send(frame))).await;
}
