//! Errors: what one client saw ([`ClientError`], counted by [`ErrorKind`]
//! in [`ErrorCounts`]) and what stops a run before it starts
//! ([`LoadgenError`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

/// How many error messages a run keeps as examples for the summary.
const KEPT_EXAMPLES: usize = 8;

/// The longest piece of an unexpected packet or body kept in an error.
const EXCERPT: usize = 120;

/// Something one client saw go wrong: a protocol error of the server, a
/// timeout, or a closed connection. Runs count these by [`ErrorKind`] and
/// go on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection was refused (nothing listens, or the backlog is
    /// full).
    #[error("connection refused")]
    ConnectRefused,
    /// The server answered with an HTTP status other than the expected one.
    #[error("HTTP status {status}: {body}")]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The server does not know the session (`400 {"code":1,"message":
    /// "Session ID unknown"}`): routed to the wrong worker, or expired.
    #[error("Session ID unknown")]
    SessionIdUnknown,
    /// A connect, read or write did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A packet that is not valid here (or not valid at all).
    #[error("unexpected packet: {0}")]
    UnexpectedPacket(String),
    /// The server closed the connection or the session.
    #[error("closed: {0}")]
    Closed(&'static str),
    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// A WebSocket error other than the kinds above.
    #[error("WebSocket error: {0}")]
    WebSocket(String),
}

impl ClientError {
    /// An [`ClientError::UnexpectedPacket`] quoting (the start of) `packet`.
    pub fn unexpected(packet: &str) -> ClientError {
        ClientError::UnexpectedPacket(excerpt(packet))
    }

    /// The error for an HTTP response with `status` and `body`: Engine.IO's
    /// `Session ID unknown` is told apart from other statuses.
    pub fn http(status: u16, body: &[u8]) -> ClientError {
        let body = String::from_utf8_lossy(body);
        if status == 400 && body.contains("Session ID unknown") {
            ClientError::SessionIdUnknown
        } else {
            ClientError::HttpStatus {
                status,
                body: excerpt(&body),
            }
        }
    }

    /// The kind this error is counted as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClientError::ConnectRefused => ErrorKind::ConnectRefused,
            ClientError::HttpStatus { status, .. } => ErrorKind::HttpStatus(*status),
            ClientError::SessionIdUnknown => ErrorKind::SessionIdUnknown,
            ClientError::Timeout(_) => ErrorKind::Timeout,
            ClientError::UnexpectedPacket(_) => ErrorKind::UnexpectedPacket,
            ClientError::Closed(_) => ErrorKind::Closed,
            ClientError::Io(_) => ErrorKind::Io,
            ClientError::WebSocket(_) => ErrorKind::WebSocket,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> ClientError {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ClientError::ConnectRefused,
            io::ErrorKind::TimedOut => ClientError::Timeout("the network"),
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ClientError::Closed("connection closed by the server"),
            _ => ClientError::Io(error),
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> ClientError {
        use tokio_tungstenite::tungstenite::Error;
        match error {
            Error::Http(response) => ClientError::http(
                response.status().as_u16(),
                response.body().as_deref().unwrap_or_default(),
            ),
            Error::Io(error) => ClientError::from(error),
            Error::ConnectionClosed | Error::AlreadyClosed => {
                ClientError::Closed("WebSocket closed")
            }
            Error::Protocol(_) => ClientError::Closed("WebSocket closed without a close frame"),
            other => ClientError::WebSocket(other.to_string()),
        }
    }
}

/// The start of `text`, cut at a character boundary.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// What errors are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// TCP connection refused.
    ConnectRefused,
    /// An HTTP status other than the expected one.
    HttpStatus(u16),
    /// `Session ID unknown`.
    SessionIdUnknown,
    /// A connect, read or write timed out.
    Timeout,
    /// A packet not valid at that point.
    UnexpectedPacket,
    /// The server closed the connection or the session.
    Closed,
    /// Another I/O error.
    Io,
    /// Another WebSocket error.
    WebSocket,
}

impl fmt::Display for ErrorKind {
    /// The key in the JSON report: `connect_refused`, `http_status_503`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::ConnectRefused => f.write_str("connect_refused"),
            ErrorKind::HttpStatus(status) => write!(f, "http_status_{status}"),
            ErrorKind::SessionIdUnknown => f.write_str("session_id_unknown"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::UnexpectedPacket => f.write_str("unexpected_packet"),
            ErrorKind::Closed => f.write_str("closed"),
            ErrorKind::Io => f.write_str("io"),
            ErrorKind::WebSocket => f.write_str("websocket"),
        }
    }
}

/// Errors of a run, counted by kind; cheap to clone and share between
/// client tasks (errors are rare, so one short-held lock is enough).
#[derive(Debug, Clone, Default)]
pub struct ErrorCounts {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    by_kind: BTreeMap<ErrorKind, u64>,
    examples: Vec<String>,
}

impl ErrorCounts {
    /// Counts `error` (and keeps its message if few are kept yet).
    pub fn record(&self, error: &ClientError) {
        tracing::debug!(%error, "client error");
        let mut counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *counts.by_kind.entry(error.kind()).or_default() += 1;
        if counts.examples.len() < KEPT_EXAMPLES {
            counts.examples.push(error.to_string());
        }
    }

    /// The counts by kind, keyed as in the JSON report.
    pub fn by_kind(&self) -> BTreeMap<String, u64> {
        let counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .by_kind
            .iter()
            .map(|(kind, count)| (kind.to_string(), *count))
            .collect()
    }

    /// All errors counted.
    pub fn total(&self) -> u64 {
        let counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.by_kind.values().sum()
    }

    /// The first few error messages, as examples.
    pub fn examples(&self) -> Vec<String> {
        let counts = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        counts.examples.clone()
    }
}

/// Why a run cannot start (bad options, a target that is not loopback, an
/// unreadable `/proc`).
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// The `--url` cannot be used.
    #[error("bad --url {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// An option is out of its bounds.
    #[error("bad option: {0}")]
    BadOption(String),
    /// The run did not end within its last-resort bound (a bug: every
    /// phase bounds itself).
    #[error("the run did not end within {0:?}")]
    Overran(std::time::Duration),
    /// A process's memory could not be read from `/proc`.
    #[error("cannot read /proc for pid {pid}: {source}")]
    Proc {
        /// The process.
        pid: u32,
        /// The error.
        source: io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_unknown_body_is_its_own_kind() {
        let error = ClientError::http(400, br#"{"code":1,"message":"Session ID unknown"}"#);
        assert_eq!(error.kind(), ErrorKind::SessionIdUnknown);
        let other = ClientError::http(400, br#"{"code":3,"message":"Bad request"}"#);
        assert_eq!(other.kind(), ErrorKind::HttpStatus(400));
        assert_eq!(other.kind().to_string(), "http_status_400");
    }

    #[test]
    fn refused_and_reset_io_errors_map_to_their_kinds() {
        let refused = ClientError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.kind(), ErrorKind::ConnectRefused);
        let reset = ClientError::from(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(reset.kind(), ErrorKind::Closed);
    }

    #[test]
    fn counts_are_grouped_by_kind_and_examples_bounded() {
        let counts = ErrorCounts::default();
        for _ in 0..20 {
            counts.record(&ClientError::Timeout("a read"));
        }
        counts.record(&ClientError::SessionIdUnknown);
        assert_eq!(counts.total(), 21);
        assert_eq!(counts.by_kind()["timeout"], 20);
        assert_eq!(counts.by_kind()["session_id_unknown"], 1);
        assert_eq!(counts.examples().len(), KEPT_EXAMPLES);
    }

    #[test]
    fn long_packets_are_cut_in_errors() {
        let long = "4".repeat(1000);
        let ClientError::UnexpectedPacket(text) = ClientError::unexpected(&long) else {
            panic!("not an unexpected packet");
        };
        assert!(text.chars().count() <= EXCERPT + 1);
    }
}
