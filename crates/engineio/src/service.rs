//! The HTTP entry point: checks a request as Node's engine.io does, then
//! opens a session or hands the request to the session's transport.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::engine::{Engine, EngineShared};
use crate::error::{ErrorCode, RequestError};
use crate::handshake::{Handshake, parse_query};
use crate::packet::Packet;
use crate::query::EngineQuery;
use crate::session::Session;
use crate::transport::{TransportKind, polling, websocket};
use crate::{Sid, heartbeat};

/// Read buffer of a WebSocket connection: memory every idle session pays;
/// larger messages still arrive whole, over several reads.
const WEBSOCKET_READ_BUFFER: usize = 256;
/// Frames are gathered up to this many bytes before a write (the writer
/// flushes after each batch anyway); the buffer grows only as needed.
const WEBSOCKET_WRITE_BATCH: usize = 64 * 1024;

/// The router serving `engine` at its path.
pub(crate) fn router(engine: Engine) -> Router {
    let path = engine.config().path.clone();
    Router::new().route(&path, any(handle)).with_state(engine)
}

async fn handle(State(engine): State<Engine>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let cors = engine.config().cors.clone();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    if let (Some(cors), &Method::OPTIONS) = (&cors, &parts.method) {
        return cors.preflight(&parts.headers);
    }
    let mut response = match dispatch(&engine, &mut parts, body).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(uri = %parts.uri, %error, "refused engine.io request");
            error.into_response()
        }
    };
    if let Some(cors) = cors {
        cors.apply(origin.as_ref(), response.headers_mut());
    }
    response
}

fn is_websocket_upgrade(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn dispatch(
    engine: &Engine,
    parts: &mut Parts,
    body: Body,
) -> Result<Response, RequestError> {
    let config = engine.config();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let query = EngineQuery::parse(&raw_query);
    let transport = match query.transport {
        Some("polling") if config.transports.polling => TransportKind::Polling,
        Some("websocket") if config.transports.websocket => TransportKind::WebSocket,
        _ => return Err(ErrorCode::TransportUnknown.into()),
    };
    let upgrade = is_websocket_upgrade(parts);
    if transport == TransportKind::WebSocket
        && let Some(cors) = &config.cors
        && !cors.allows_websocket(parts.headers.get(header::ORIGIN))
    {
        return Err(RequestError {
            code: ErrorCode::Forbidden,
            message: "Origin not allowed".to_owned(),
        });
    }
    if let Some(sid) = query.sid {
        let session = engine
            .session(sid)
            .ok_or(RequestError::new(ErrorCode::SessionIdUnknown))?;
        if session.pong_overdue() {
            session.close_now(crate::CloseReason::PingTimeout);
            return Err(ErrorCode::SessionIdUnknown.into());
        }
        return match transport {
            TransportKind::Polling => {
                if session.transport() != TransportKind::Polling {
                    return Err(ErrorCode::BadRequest.into());
                }
                match parts.method {
                    Method::GET => Ok(polling::poll(session).await),
                    Method::POST => Ok(polling::post(session, body).await),
                    _ => Err(ErrorCode::BadRequest.into()),
                }
            }
            TransportKind::WebSocket if upgrade => upgrade_session(engine, parts, session).await,
            TransportKind::WebSocket => Err(ErrorCode::BadRequest.into()),
        };
    }
    if parts.method != Method::GET {
        return Err(ErrorCode::BadHandshakeMethod.into());
    }
    if query.eio != Some("4") {
        return Err(ErrorCode::UnsupportedProtocolVersion.into());
    }
    if transport == TransportKind::WebSocket && !upgrade {
        return Err(ErrorCode::BadRequest.into());
    }
    let handshake = Handshake {
        method: parts.method.clone(),
        uri: detach_uri(&parts.uri),
        headers: detach_headers(&parts.headers),
        remote_addr: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0),
        query: parse_query(&parts.uri),
        issued: SystemTime::now(),
        transport,
    };
    if let Some(allow) = &config.allow_request {
        allow(&handshake).map_err(|message| RequestError {
            code: ErrorCode::Forbidden,
            message,
        })?;
    }
    let sid = config.sid_generator.generate();
    let open = open_packet(engine.shared(), &sid, transport);
    let mut response = match transport {
        TransportKind::Polling => {
            let session = Session::new(
                sid.clone(),
                handshake,
                Arc::clone(engine.shared()),
                transport,
            );
            start(&session);
            let mut body = String::new();
            open.write_text(&mut body);
            polling::payload_response(body)
        }
        TransportKind::WebSocket => {
            let upgrade = websocket_upgrade(engine, parts).await?;
            // The upgrade task lives as long as the session: it keeps one
            // pointer to what the session is made of, and one to the socket
            // (a future keeps its arguments beside its own state, so a
            // socket passed by value would be stored several times over).
            let pending = Box::new((sid.clone(), handshake, Arc::clone(engine.shared()), open));
            upgrade.on_upgrade(move |socket| {
                let socket = Box::new(socket);
                async move {
                    let (sid, handshake, shared, open) = *pending;
                    let session = Session::new(sid, handshake, shared, transport);
                    start(&session);
                    websocket::serve_new(session, open, socket).await;
                }
            })
        }
    };
    if let Some(cookie) = &config.cookie {
        if let Ok(value) = HeaderValue::from_str(&cookie.set_cookie(&sid)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Copies header values out of the connection's read buffer. hyper's
/// values are slices of that buffer (8 KiB), so keeping them for the life of
/// a session would keep the whole buffer: 8 KiB per WebSocket session.
fn detach_headers(headers: &axum::http::HeaderMap) -> axum::http::HeaderMap {
    let mut copy = axum::http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_str().as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_bytes(value.as_bytes())) {
            copy.append(name, value);
        }
    }
    copy
}

/// Copies a URI out of the connection's read buffer (see [`detach_headers`]).
fn detach_uri(uri: &axum::http::Uri) -> axum::http::Uri {
    axum::http::Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

/// Registers a new session, tells the handler, starts its heartbeat.
fn start(session: &Arc<Session>) {
    crate::stats::SESSIONS_OPENED.increment();
    let shared = session.shared();
    shared.insert(Arc::clone(session));
    if let Some(observer) = &shared.config.session_observer {
        observer.opened(session.id());
    }
    shared.handler.on_open(session);
    heartbeat::spawn(Arc::clone(session));
}

/// The open packet: `{"sid","upgrades","pingInterval","pingTimeout","maxPayload"}`.
fn open_packet(shared: &EngineShared, sid: &Sid, transport: TransportKind) -> Packet {
    let config = &shared.config;
    let upgrades: &[&str] = if transport == TransportKind::Polling && config.transports.websocket {
        &["websocket"]
    } else {
        &[]
    };
    let json = serde_json::json!({
        "sid": sid.as_str(),
        "upgrades": upgrades,
        "pingInterval": config.ping_interval.as_millis() as u64,
        "pingTimeout": config.ping_timeout.as_millis() as u64,
        "maxPayload": config.max_payload,
    });
    Packet::Open(json.to_string())
}

async fn websocket_upgrade(
    engine: &Engine,
    parts: &mut Parts,
) -> Result<WebSocketUpgrade, RequestError> {
    let max = engine.config().max_payload;
    let upgrade = WebSocketUpgrade::from_request_parts(parts, &())
        .await
        .map_err(|_| RequestError::new(ErrorCode::BadRequest))?;
    // Small buffers: tungstenite's 128 KiB read buffer is zeroed on every
    // poll (22% of a worker's time in fan-out) and is memory per session;
    // messages larger than it still arrive whole, in several reads.
    Ok(upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(WEBSOCKET_READ_BUFFER)
        .write_buffer_size(WEBSOCKET_WRITE_BATCH))
}

/// Upgrades a polling session to WebSocket. A session that already upgraded
/// or is upgrading gets its new WebSocket accepted and closed, as Node does.
async fn upgrade_session(
    engine: &Engine,
    parts: &mut Parts,
    session: Arc<Session>,
) -> Result<Response, RequestError> {
    let upgrade = websocket_upgrade(engine, parts).await?;
    let accepted = {
        let mut state = session.lock();
        let accepted = state.transport == TransportKind::Polling && !state.upgrading;
        if accepted {
            state.upgrading = true;
        }
        accepted
    };
    if !accepted {
        return Ok(upgrade.on_upgrade(|mut socket| async move {
            let _ = socket.send(axum::extract::ws::Message::Close(None)).await;
        }));
    }
    let failed = Arc::clone(&session);
    Ok(upgrade
        .on_failed_upgrade(move |_| failed.lock().upgrading = false)
        .on_upgrade(move |socket| websocket::serve_upgrade(session, Box::new(socket))))
}
