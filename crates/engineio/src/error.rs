//! Errors: malformed packets, and the request errors Engine.IO answers with
//! an HTTP status and a JSON body.

use axum::http::{self as http, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cors::Cors;

/// Why a packet or payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// An empty packet (no type).
    #[error("empty packet")]
    Empty,
    /// A type character that is not a known packet type.
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    /// Data after a type that carries none.
    #[error("unexpected data after packet type {0:?}")]
    UnexpectedData(char),
    /// An `open` packet sent by a client.
    #[error("open packet sent by the client")]
    UnexpectedOpen,
    /// A binary record whose base64 does not decode.
    #[error("invalid base64 in a binary packet")]
    InvalidBase64,
    /// A payload that is not UTF-8.
    #[error("payload is not valid UTF-8")]
    InvalidUtf8,
}

/// The error codes of Engine.IO's HTTP errors, as Node's engine.io sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorCode {
    /// The `transport` query parameter is missing or not enabled.
    TransportUnknown = 0,
    /// The `sid` names no live session.
    SessionIdUnknown = 1,
    /// A handshake that is not a GET.
    BadHandshakeMethod = 2,
    /// Any other malformed request.
    BadRequest = 3,
    /// Refused by the `allow_request` hook.
    Forbidden = 4,
    /// `EIO` missing or not `4`.
    UnsupportedProtocolVersion = 5,
}

impl ErrorCode {
    /// The message Node's engine.io sends with this code.
    pub fn message(self) -> &'static str {
        match self {
            ErrorCode::TransportUnknown => "Transport unknown",
            ErrorCode::SessionIdUnknown => "Session ID unknown",
            ErrorCode::BadHandshakeMethod => "Bad handshake method",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for `Forbidden`, 400 for the rest.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A refused request: an error code and the message sent with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {})", *code as u8)]
pub struct RequestError {
    /// The Engine.IO error code.
    pub code: ErrorCode,
    /// The message; the code's default message unless a hook gave one.
    pub message: String,
}

impl RequestError {
    /// The error with the code's default message.
    pub fn new(code: ErrorCode) -> Self {
        RequestError {
            code,
            message: code.message().to_owned(),
        }
    }

    /// The JSON body: `{"code":N,"message":"..."}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "code": self.code as u8, "message": self.message }).to_string()
    }
}

impl From<ErrorCode> for RequestError {
    fn from(code: ErrorCode) -> Self {
        RequestError::new(code)
    }
}

impl RequestError {
    /// The answer to a refused request, as the engine sends it: the status,
    /// `Content-Type: application/json`, the JSON body and, with a CORS
    /// policy, the CORS headers for the request's `origin`. The one way an
    /// error leaves iocluster, whether the engine, the worker proxy or the
    /// cluster master (which writes it to the socket itself) answers.
    pub fn to_http(
        &self,
        cors: Option<&Cors>,
        origin: Option<&HeaderValue>,
    ) -> http::Response<String> {
        let mut response = http::Response::new(self.body());
        *response.status_mut() = self.code.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(cors) = cors {
            cors.apply(origin, response.headers_mut());
        }
        response
    }
}

impl IntoResponse for RequestError {
    fn into_response(self) -> Response {
        self.to_http(None, None).into_response()
    }
}
