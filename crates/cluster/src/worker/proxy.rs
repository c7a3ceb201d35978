//! Requests for another worker's session.
//!
//! - Another worker of this node: browsers reuse pooled connections across
//!   tabs, so a connection the master handed to worker A may later carry a
//!   request for a session of worker B. Worker A asks the master for a Unix
//!   stream to B and forwards the request over it (a WebSocket upgrade
//!   included): B serves it like any connection, and the client sees B's
//!   answer, not a 400.
//! - A worker of another node (a fleet without a sticky balancer): the
//!   request goes to that node's peer port over a pooled, authenticated
//!   connection ([`super::peers`]), with the client's address in
//!   `x-iocluster-client-addr`; that node's master hands the connection to
//!   the owner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use iocluster_engineio::{Cors, EngineQuery, ErrorCode, RequestError};

use super::link::MasterLink;
use super::peers::PeerClients;
use crate::sid::{InstanceId, SessionHome, home_of};

/// The header in which a forwarding node tells the owner who the client
/// is; trusted on authenticated peer connections only.
pub(crate) const CLIENT_ADDR: &str = "x-iocluster-client-addr";

/// A worker's proxy to the other workers, of this node and of others.
pub(crate) struct Proxy {
    link: Arc<MasterLink>,
    peers: PeerClients,
    /// The engine's CORS policy, for this proxy's own error answers.
    cors: Option<Cors>,
}

impl Proxy {
    pub(crate) fn new(link: Arc<MasterLink>, peers: PeerClients, cors: Option<Cors>) -> Arc<Proxy> {
        Arc::new(Proxy { link, peers, cors })
    }
}

/// Requests this worker's public router saw, by who served them: itself,
/// another worker of this node, another node.
pub(crate) static REQUESTS_SERVED: AtomicU64 = AtomicU64::new(0);
/// See [`REQUESTS_SERVED`].
pub(crate) static REQUESTS_TO_WORKER: AtomicU64 = AtomicU64::new(0);
/// See [`REQUESTS_SERVED`].
pub(crate) static REQUESTS_TO_NODE: AtomicU64 = AtomicU64::new(0);

/// Middleware: requests for another worker's session go to that worker.
pub(crate) async fn forward_foreign_sessions(
    State(proxy): State<Arc<Proxy>>,
    request: Request,
    next: Next,
) -> Response {
    let home = EngineQuery::parse(request.uri().query().unwrap_or(""))
        .sid
        .and_then(home_of);
    match home {
        Some(home) if home.node != proxy.link.node() => {
            REQUESTS_TO_NODE.fetch_add(1, Ordering::Relaxed);
            forward_to_node(&proxy, home, request).await
        }
        Some(home) if home.instance != proxy.link.instance() => {
            REQUESTS_TO_WORKER.fetch_add(1, Ordering::Relaxed);
            forward(&proxy, home.instance, request).await
        }
        _ => {
            REQUESTS_SERVED.fetch_add(1, Ordering::Relaxed);
            next.run(request).await
        }
    }
}

/// Middleware of authenticated peer connections: the client is who the
/// forwarding node says.
pub(crate) async fn trust_client_addr(mut request: Request, next: Next) -> Response {
    let client = request
        .headers_mut()
        .remove(CLIENT_ADDR)
        .and_then(|value| value.to_str().ok()?.parse::<SocketAddr>().ok());
    if let Some(client) = client {
        request.extensions_mut().insert(ConnectInfo(client));
    }
    next.run(request).await
}

/// `400 Session ID unknown`, as the engine answers it.
fn unknown_session(proxy: &Proxy, origin: Option<&HeaderValue>) -> Response {
    RequestError::new(ErrorCode::SessionIdUnknown)
        .to_http(proxy.cors.as_ref(), origin)
        .map(Body::from)
}

async fn forward(proxy: &Proxy, owner: InstanceId, mut request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let unknown_session = || unknown_session(proxy, origin.as_ref());
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Some(stream) = proxy.link.connect(owner, remote).await else {
        return unknown_session();
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await
    else {
        return unknown_session();
    };
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%error, "proxied connection ended with an error");
        }
    });
    let client_upgrade = upgrade_of(&mut request);
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, "proxied request failed");
            return unknown_session();
        }
    };
    relay(client_upgrade, response)
}

/// Forwards a request to the node that owns its session, over a pooled
/// peer connection to the owning worker.
async fn forward_to_node(proxy: &Proxy, home: SessionHome, mut request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let unknown_session = || unknown_session(proxy, origin.as_ref());
    let Some(addr) = proxy.link.peer_address(home.node).await else {
        return unknown_session();
    };
    let Some(client) = proxy.peers.client(addr, home.instance) else {
        return unknown_session();
    };
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match remote.and_then(|r| HeaderValue::from_str(&r.to_string()).ok()) {
        Some(remote) => request.headers_mut().insert(CLIENT_ADDR, remote),
        None => request.headers_mut().remove(CLIENT_ADDR),
    };
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    match format!("http://{addr}{target}").parse() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return unknown_session(),
    }
    let client_upgrade = upgrade_of(&mut request);
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(node = %home.node, %error, "request to a peer failed");
            return unknown_session();
        }
    };
    relay(client_upgrade, response.map(Body::new))
}

/// The client's side of a WebSocket upgrade the request asks for.
fn upgrade_of(request: &mut Request) -> Option<hyper::upgrade::OnUpgrade> {
    request
        .headers()
        .contains_key(header::UPGRADE)
        .then(|| hyper::upgrade::on(request))
}

/// The owner's answer, for the client; an upgrade is spliced both ways.
fn relay<B>(
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    mut response: axum::http::Response<B>,
) -> Response
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    if let (Some(client_upgrade), axum::http::StatusCode::SWITCHING_PROTOCOLS) =
        (client_upgrade, response.status())
    {
        let owner_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            let (Ok(client), Ok(owner)) = (client_upgrade.await, owner_upgrade.await) else {
                return;
            };
            let _ =
                tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(owner))
                    .await;
        });
    }
    response.map(Body::new)
}
