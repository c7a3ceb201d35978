//! What the server knows of the request that opened a session.

use std::net::SocketAddr;
use std::time::SystemTime;

use axum::http::{HeaderMap, Method, Uri};

use crate::transport::TransportKind;

/// The handshake request of a session: headers, query, address and time,
/// as Socket.IO's `socket.handshake` exposes them.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The request method.
    pub method: Method,
    /// The request URI (path and query).
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The client's address, when the connection has one.
    pub remote_addr: Option<SocketAddr>,
    /// The decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// When the handshake arrived.
    pub issued: SystemTime,
    /// The transport of the handshake.
    pub transport: TransportKind,
}

impl Handshake {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of header `name` when it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Decodes a URI's query into pairs.
pub(crate) fn parse_query(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}
