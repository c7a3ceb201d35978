//! HTTP long-polling: a GET takes what is queued (or waits for it), a POST
//! delivers a payload of packets.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use crate::error::{ErrorCode, RequestError};
use crate::handler::CloseReason;
use crate::packet::Packet;
use crate::payload;
use crate::session::{Phase, Session};
use crate::transport::TransportKind;

/// How long a client's close waits for the poll it overtook.
const CLOSE_POLL_GRACE: std::time::Duration = std::time::Duration::from_millis(50);

/// A polling response with a payload.
pub(crate) fn payload_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        )],
        body,
    )
        .into_response()
}

/// Clears a request flag when the request ends, and closes the session when
/// the client went away mid-poll (Node: "poll connection closed prematurely").
struct PendingGuard<'a> {
    session: &'a Arc<Session>,
    finished: bool,
    post: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        {
            let mut state = self.session.lock();
            if self.post {
                state.post_pending = false;
            } else {
                state.poll_pending = false;
            }
        }
        if !self.finished && !self.post {
            self.session.close_now(CloseReason::TransportError);
        }
    }
}

/// Answers a GET: the queued packets, or waits until there are some.
pub(crate) async fn poll(session: Arc<Session>) -> Response {
    {
        let mut state = session.lock();
        if state.poll_pending {
            drop(state);
            tracing::debug!(sid = %session.id(), "overlapping polls: closing the session");
            session.close_now(CloseReason::TransportError);
            return RequestError::new(ErrorCode::BadRequest).into_response();
        }
        state.poll_pending = true;
    }
    // A POST closing the session may be waiting for this poll.
    session.wake.notify_waiters();
    let mut guard = PendingGuard {
        session: &session,
        finished: false,
        post: false,
    };
    loop {
        let notified = session.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (body, flushed_close) = {
            let mut state = session.lock();
            match state.phase {
                Phase::Closed(CloseReason::TransportClose) => (Some("6".to_owned()), false),
                Phase::Closed(_) => (Some("1".to_owned()), false),
                _ if state.transport != TransportKind::Polling => (Some("6".to_owned()), false),
                _ if !state.queue.is_empty() => {
                    // As in Node, the close packet goes out in a response of
                    // its own, after what was queued before it: a client
                    // handles those messages before it closes (the
                    // Socket.IO client handles a decoded packet a tick
                    // later, so a DISCONNECT sharing a payload with the
                    // close would be reported as "transport close").
                    // (Packets after the close packet, noops, are moot.)
                    let queued = state.queue.len();
                    let (send, consumed, flushed_close) =
                        match state.queue.iter().position(|p| *p == Packet::Close) {
                            Some(0) => (1, queued, true),
                            Some(close) => (close, close, false),
                            None => (queued, queued, false),
                        };
                    let body = payload::encode(state.queue.iter().take(send));
                    crate::stats::sent(state.queue.iter().take(send));
                    state.queue.drain(..consumed);
                    state.messages = 0;
                    state.bytes = 0;
                    (Some(body), flushed_close)
                }
                _ => (None, false),
            }
        };
        if let Some(body) = body {
            session.drained.notify_waiters();
            guard.finished = true;
            drop(guard);
            if flushed_close {
                session.close_flushed();
            }
            return payload_response(body);
        }
        notified.await;
    }
}

/// Takes a POST: decodes its payload and hands the packets to the session.
pub(crate) async fn post(session: Arc<Session>, body: Body) -> Response {
    {
        let mut state = session.lock();
        if state.post_pending {
            drop(state);
            tracing::debug!(sid = %session.id(), "overlapping posts: closing the session");
            session.close_now(CloseReason::TransportError);
            return RequestError::new(ErrorCode::BadRequest).into_response();
        }
        state.post_pending = true;
    }
    let _guard = PendingGuard {
        session: &session,
        finished: true,
        post: true,
    };
    let config = &session.shared().config;
    if http_body::Body::size_hint(&body).lower() > config.max_payload as u64 {
        tracing::debug!(sid = %session.id(), "declared polling body over max_payload");
        session.close_now(CloseReason::TransportError);
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    // A client that trickles its body is cut off after a heartbeat's worth
    // of time; a body over max_payload is never buffered past the limit.
    let deadline = config.ping_interval + config.ping_timeout;
    let collected =
        tokio::time::timeout(deadline, Limited::new(body, config.max_payload).collect()).await;
    let bytes = match collected {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            tracing::debug!(sid = %session.id(), "polling body over max_payload");
            session.close_now(CloseReason::TransportError);
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
        Ok(Err(_)) | Err(_) => {
            session.close_now(CloseReason::TransportError);
            return RequestError::new(ErrorCode::BadRequest).into_response();
        }
    };
    let packets = match payload::decode(&bytes) {
        Ok(packets) => packets,
        Err(error) => {
            tracing::debug!(sid = %session.id(), %error, "malformed polling payload");
            session.close_now(CloseReason::ParseError);
            return RequestError::new(ErrorCode::BadRequest).into_response();
        }
    };
    for packet in packets {
        if packet == Packet::Close && !session.lock().poll_pending {
            // A client closing over polling has a poll pending, which gets
            // a noop. When the close overtakes that poll (they travel on
            // two connections), the poll gets a moment to arrive so it is
            // answered, not refused; the POST is answered at once, as
            // Node's is, and what came before the close in its body was
            // handled already, in order.
            let session = Arc::clone(&session);
            tokio::spawn(async move {
                session.await_poll(CLOSE_POLL_GRACE).await;
                session.on_packet(Packet::Close);
            });
            // (Anything after a close packet is moot, as in Node.)
            break;
        }
        session.on_packet(packet);
    }
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))],
        "ok",
    )
        .into_response()
}
