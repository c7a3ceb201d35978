//! `GET`/`HEAD /health` in the worker. On a plain-HTTP port the master
//! answers it from the request head; on a TLS port the master reads
//! nothing, so the worker that terminates TLS answers it the same way.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The path, as on the master.
const HEALTH: &str = "/health";

/// Middleware: 200 `{"status":"ok"}` while this worker serves.
pub(crate) async fn answer_health(request: Request, next: Next) -> Response {
    let method = request.method();
    if request.uri().path() == HEALTH && (method == Method::GET || method == Method::HEAD) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"status\":\"ok\"}",
        )
            .into_response();
    }
    next.run(request).await
}
