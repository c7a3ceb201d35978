//! Cross-origin resource sharing, closed unless configured, as the `cors`
//! package Node's engine.io uses.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// Which origins may call the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigin {
    /// Any origin: `*`, or the request's origin echoed when credentials are
    /// allowed (browsers refuse `*` with credentials).
    Any,
    /// Only these origins (exact match, e.g. `https://example.com`).
    List(Vec<String>),
}

/// CORS options.
///
/// ```
/// use iocluster_engineio::{Cors, CorsOrigin};
/// let cors = Cors::new(CorsOrigin::List(vec!["https://app.example".into()])).credentials(true);
/// assert!(cors.credentials);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// The allowed origins.
    pub origin: CorsOrigin,
    /// `Access-Control-Allow-Methods` for preflights. Default
    /// `GET,HEAD,PUT,PATCH,POST,DELETE` (the `cors` package's).
    pub methods: String,
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// `Access-Control-Allow-Headers`; `None` echoes the preflight's
    /// `Access-Control-Request-Headers`.
    pub allowed_headers: Option<String>,
    /// `Access-Control-Max-Age` in seconds, for preflights.
    pub max_age: Option<u64>,
    /// Whether WebSocket upgrades from an origin not allowed are refused
    /// (403). Browsers apply no CORS to WebSockets, so without this check
    /// any site could open a WebSocket to the server with the user's
    /// cookies (cross-site WebSocket hijacking). Default true; turn it off
    /// for non-browser clients that send a foreign `Origin`. Node's
    /// engine.io does not check (there, `allowRequest` is the way).
    pub check_websocket_origin: bool,
}

impl Cors {
    /// CORS for these origins, without credentials.
    pub fn new(origin: CorsOrigin) -> Self {
        Cors {
            origin,
            methods: "GET,HEAD,PUT,PATCH,POST,DELETE".to_owned(),
            credentials: false,
            allowed_headers: None,
            max_age: None,
            check_websocket_origin: true,
        }
    }

    /// Allows credentials (cookies) on cross-origin requests.
    pub fn credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// Whether WebSocket upgrades from origins not allowed are refused
    /// (default true).
    pub fn check_websocket_origin(mut self, check: bool) -> Self {
        self.check_websocket_origin = check;
        self
    }

    /// Whether a WebSocket upgrade from `origin` is served: always when the
    /// check is off or the request has no `Origin` (not a browser), else
    /// when the origin is allowed.
    pub fn allows_websocket(&self, origin: Option<&HeaderValue>) -> bool {
        !self.check_websocket_origin || self.allows(origin)
    }

    /// The `Access-Control-Allow-Origin` value for a request origin, or none
    /// when it is not allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match (&self.origin, origin) {
            (CorsOrigin::Any, Some(origin)) if self.credentials => Some(origin.clone()),
            (CorsOrigin::Any, _) => Some(HeaderValue::from_static("*")),
            (CorsOrigin::List(list), Some(origin)) => list
                .iter()
                .any(|allowed| allowed.as_bytes() == origin.as_bytes())
                .then(|| origin.clone()),
            (CorsOrigin::List(_), None) => None,
        }
    }

    /// Adds the CORS headers of a normal (not preflight) response to a
    /// request from `origin` (its `Origin` header): `Vary`, and when the
    /// origin is allowed, `Access-Control-Allow-Origin` (and `-Credentials`).
    /// The engine's answers, the cluster master's own errors and the worker
    /// proxy's all carry these, so a browser sees a 400 as a 400, not as a
    /// CORS failure.
    ///
    /// ```
    /// use axum::http::{HeaderMap, HeaderValue, header};
    /// use iocluster_engineio::{Cors, CorsOrigin};
    /// let cors = Cors::new(CorsOrigin::List(vec!["https://app.example".into()])).credentials(true);
    /// let mut response = HeaderMap::new();
    /// cors.apply(Some(&HeaderValue::from_static("https://app.example")), &mut response);
    /// assert_eq!(response[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
    /// assert_eq!(response[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    /// ```
    pub fn apply(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) {
        if !matches!(self.origin, CorsOrigin::Any) || self.credentials {
            response.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(allow) = self.allow_origin(origin) {
            response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            if self.credentials {
                response.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
    }

    /// Whether a request from `origin` may be served across origins: an
    /// origin on the list (any with [`CorsOrigin::Any`]); a request without
    /// an `Origin` header is not a cross-origin browser request and passes.
    pub fn allows(&self, origin: Option<&HeaderValue>) -> bool {
        origin.is_none() || self.allow_origin(origin).is_some()
    }

    /// The answer to an `OPTIONS` preflight: 204 with the allowed methods and
    /// headers.
    pub(crate) fn preflight(&self, request: &HeaderMap) -> Response {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        self.apply(request.get(header::ORIGIN), headers);
        if let Ok(methods) = HeaderValue::from_str(&self.methods) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        let allowed = match &self.allowed_headers {
            Some(list) => HeaderValue::from_str(list).ok(),
            None => request.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
        };
        if let Some(allowed) = allowed {
            if self.allowed_headers.is_none() {
                headers.append(
                    header::VARY,
                    HeaderValue::from_static("Access-Control-Request-Headers"),
                );
            }
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        if let Some(max_age) = self.max_age {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
        }
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        response
    }
}
