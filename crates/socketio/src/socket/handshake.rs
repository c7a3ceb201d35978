//! `socket.handshake`: what the client sent when it connected, built on
//! demand from the engine session (a socket keeps only its `auth`).

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use iocluster_engineio::Session;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The handshake of a socket, as Node's `socket.handshake`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketHandshake {
    /// Request headers (the last value of each).
    pub headers: BTreeMap<String, String>,
    /// When the connection was opened, as an HTTP date.
    pub time: String,
    /// The client's IP address.
    pub address: String,
    /// Whether the request came from another origin.
    pub xdomain: bool,
    /// Whether the connection is encrypted.
    pub secure: bool,
    /// When the connection was opened, in ms since the epoch.
    pub issued: u64,
    /// The request URL (path and query).
    pub url: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The `auth` payload of the CONNECT packet.
    pub auth: Value,
}

impl SocketHandshake {
    pub(crate) fn new(session: &Session, auth: Value) -> Self {
        let handshake = session.handshake();
        let headers = handshake
            .headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        SocketHandshake {
            headers,
            time: httpdate::fmt_http_date(handshake.issued),
            address: handshake
                .remote_addr
                .map(|addr| addr.ip().to_string())
                .unwrap_or_default(),
            xdomain: handshake.headers.contains_key("origin"),
            secure: false,
            issued: handshake
                .issued
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            url: handshake.uri.to_string(),
            query: handshake.query.iter().cloned().collect(),
            auth,
        }
    }
}
