//! One forwarded request over a byte stream, written and answered by hand:
//! the head and the start of the body go out in one write, the answer's
//! head is parsed with httparse and its body delimited by its length (or
//! chunked framing, or the end of the stream). No client task, no channel
//! between tasks, no second parse into `http` types on the way out: the
//! forwarding worker's costs per request are one write, one read and a
//! head parse (hyper's pooled client, which this replaced, cost more than
//! twice that; DESIGN.md "Any node serves any session").
//!
//! Every read is bounded: the answer's head by 64 KiB
//! and 64 headers, each wait by the caller's deadline;
//! a body is passed on as it arrives, never gathered whole unless it came
//! with its head.

mod answer;
mod chunked;
mod request;

use std::io;
use std::time::Duration;

use bytes::BytesMut;

pub(crate) use answer::{AnswerBody, AnswerHead, read_answer_head};
pub(crate) use request::{Outgoing, hop_by_hop};

/// Why a forwarded request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection closed before a byte of the answer.
    #[error("connection closed before an answer")]
    Closed,
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The answer is not HTTP/1.1 as we speak it.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// The client's body could not be read.
    #[error("request body: {0}")]
    RequestBody(String),
    /// No progress within the deadline.
    #[error("no answer in time")]
    Timeout,
}

/// A connection to the owner of a session, with what was read from it
/// and not used yet.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    pub(crate) stream: S,
    pub(crate) buf: BytesMut,
}

impl<S> Conn<S> {
    pub(crate) fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }
}

/// How a body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes (none: `Length(0)`).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (answers only).
    UntilClose,
}

/// `future`, or [`ExchangeError::Timeout`] after `deadline`.
pub(super) async fn within<F: Future>(
    deadline: Duration,
    future: F,
) -> Result<F::Output, ExchangeError> {
    tokio::time::timeout(deadline, future)
        .await
        .map_err(|_| ExchangeError::Timeout)
}
