//! What stands before the app on every connection a worker serves, as one
//! tower layer: `GET`/`HEAD /health` answered; on peer connections, the
//! client's address taken from the forwarding node's header; a request for
//! another worker's session forwarded ([`Proxy`]); the rest to the app
//! directly, without boxing its future (three `axum::middleware::from_fn`
//! layers did this before, each cloning the inner service and boxing a
//! future per request).
//!
//! On a plain-HTTP port the master answers `/health` from the request
//! head; on a TLS port the master reads nothing, so the worker answers it
//! the same way.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{BoxFuture, Either};

use super::proxy::{Proxy, REQUESTS_SERVED, trust_client_addr};

/// The path, as on the master.
const HEALTH: &str = "/health";

/// The layer; `peer` for the app as other nodes reach it.
#[derive(Clone)]
pub(crate) struct Front {
    proxy: Arc<Proxy>,
    peer: bool,
}

impl Front {
    /// Before the app as clients reach it.
    pub(crate) fn public(proxy: Arc<Proxy>) -> Front {
        Front { proxy, peer: false }
    }

    /// Before the app as other nodes reach it, who say who the client is.
    pub(crate) fn peer(proxy: Arc<Proxy>) -> Front {
        Front { proxy, peer: true }
    }
}

impl<S> tower::Layer<S> for Front {
    type Service = FrontService<S>;

    fn layer(&self, inner: S) -> FrontService<S> {
        FrontService {
            inner,
            front: self.clone(),
        }
    }
}

/// [`Front`] around one of the app's routes.
#[derive(Clone)]
pub(crate) struct FrontService<S> {
    inner: S,
    front: Front,
}

/// What a request becomes: the app's own future, an answer already made,
/// or a forwarding.
type FrontFuture<F> = Either<
    F,
    Either<Ready<Result<Response, Infallible>>, BoxFuture<'static, Result<Response, Infallible>>>,
>;

impl<S> tower::Service<Request> for FrontService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let method = request.method();
        if request.uri().path() == HEALTH && (method == Method::GET || method == Method::HEAD) {
            return Either::Right(Either::Left(ready(Ok(health()))));
        }
        if self.front.peer {
            trust_client_addr(&mut request);
        }
        match self.front.proxy.foreign_home(&request) {
            Some(home) => {
                let proxy = Arc::clone(&self.front.proxy);
                Either::Right(Either::Right(Box::pin(async move {
                    Ok(proxy.forward(home, request).await)
                })))
            }
            None => {
                REQUESTS_SERVED.fetch_add(1, Ordering::Relaxed);
                Either::Left(self.inner.call(request))
            }
        }
    }
}

/// 200 `{"status":"ok"}` while this worker serves.
fn health() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
        .into_response()
}
