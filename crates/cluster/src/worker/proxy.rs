//! Requests for another worker's session on a kept-alive connection.
//!
//! Browsers reuse pooled connections across tabs, so a connection the master
//! handed to worker A may later carry a request for a session of worker B.
//! Worker A then asks the master for a Unix stream to B and forwards the
//! request over it (a WebSocket upgrade included): B serves it like any
//! connection, and the client sees B's answer, not a 400.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::TokioIo;
use iocluster_engineio::{Cors, EngineQuery, ErrorCode, RequestError};

use super::link::MasterLink;
use crate::sid::{InstanceId, instance_of};

/// A worker's proxy to the other workers.
pub(crate) struct Proxy {
    link: Arc<MasterLink>,
    /// The engine's CORS policy, for this proxy's own error answers.
    cors: Option<Cors>,
}

impl Proxy {
    pub(crate) fn new(link: Arc<MasterLink>, cors: Option<Cors>) -> Arc<Proxy> {
        Arc::new(Proxy { link, cors })
    }
}

/// Middleware: requests for another worker's session go to that worker.
pub(crate) async fn forward_foreign_sessions(
    State(proxy): State<Arc<Proxy>>,
    request: Request,
    next: Next,
) -> Response {
    let owner = EngineQuery::parse(request.uri().query().unwrap_or(""))
        .sid
        .and_then(instance_of);
    match owner {
        Some(owner) if owner != proxy.link.instance() => forward(&proxy, owner, request).await,
        _ => next.run(request).await,
    }
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
