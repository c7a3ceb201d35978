//! Requests for another worker's session on a kept-alive connection.
//!
//! Browsers reuse pooled connections across tabs, so a connection the master
//! handed to worker A may later carry a request for a session of worker B.
//! Worker A then asks the master for a Unix stream to B and forwards the
//! request over it (a WebSocket upgrade included): B serves it like any
//! connection, and the client sees B's answer, not a 400.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use iocluster_engineio::{Cors, ErrorCode, RequestError};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use crate::adapter::relay::Relay;
use crate::control::WorkerMessage;
use crate::sid::{InstanceId, instance_of};

/// How long a worker waits for the master to join it to another worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A worker's proxy to the other workers.
pub(crate) struct Proxy {
    instance: InstanceId,
    relay: Arc<Relay>,
    /// The engine's CORS policy, for this proxy's own error answers.
    cors: Option<Cors>,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Option<UnixStream>>>>,
    next: std::sync::atomic::AtomicU64,
}

impl Proxy {
    pub(crate) fn new(instance: InstanceId, relay: Arc<Relay>, cors: Option<Cors>) -> Arc<Proxy> {
        Arc::new(Proxy {
            instance,
            relay,
            cors,
            waiting: Mutex::new(HashMap::new()),
            next: std::sync::atomic::AtomicU64::new(1),
        })
    }

    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Option<UnixStream>>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The master's answer to a connect request: a stream, or none.
    pub(crate) fn connected(&self, request: u64, stream: Option<UnixStream>) {
        if let Some(waiter) = self.waiting().remove(&request) {
            let _ = waiter.send(stream);
        }
    }

    async fn connect(&self, owner: InstanceId, remote: Option<SocketAddr>) -> Option<UnixStream> {
        let request = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.waiting().insert(request, sender);
        self.relay.control(&WorkerMessage::Connect {
            request,
            instance: owner.0,
            remote: remote.map(|r| r.to_string()),
        });
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, receiver)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        self.waiting().remove(&request);
        stream
    }
}

/// Middleware: requests for another worker's session go to that worker.
pub(crate) async fn forward_foreign_sessions(
    State(proxy): State<Arc<Proxy>>,
    request: Request,
    next: Next,
) -> Response {
    let owner = request
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("sid=")))
        .and_then(instance_of);
    match owner {
        Some(owner) if owner != proxy.instance => forward(&proxy, owner, request).await,
        _ => next.run(request).await,
    }
}

/// `400 Session ID unknown`, with the CORS headers the engine's own
/// answers carry (a browser then sees the 400, not a CORS failure).
fn unknown_session(proxy: &Proxy, origin: Option<&HeaderValue>) -> Response {
    let mut response = RequestError::new(ErrorCode::SessionIdUnknown).into_response();
    if let Some(cors) = &proxy.cors {
        let mut request = HeaderMap::new();
        if let Some(origin) = origin {
            request.insert(header::ORIGIN, origin.clone());
        }
        cors.apply(&request, response.headers_mut());
    }
    response
}

async fn forward(proxy: &Proxy, owner: InstanceId, mut request: Request) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let unknown_session = || unknown_session(proxy, origin.as_ref());
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Some(stream) = proxy.connect(owner, remote).await else {
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
    let wants_upgrade = request.headers().contains_key(header::UPGRADE);
    let client_upgrade = wants_upgrade.then(|| hyper::upgrade::on(&mut request));
    let mut response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, "proxied request failed");
            return unknown_session();
        }
    };
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
