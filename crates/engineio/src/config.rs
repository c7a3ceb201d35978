//! Engine options, with Node's engine.io defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cookie::CookieConfig;
use crate::cors::Cors;
use crate::handshake::Handshake;
use crate::sid::{RandomSid, SidGenerator};

/// The transports a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket (direct, or upgraded from polling when both are on).
    pub websocket: bool,
}

impl Transports {
    /// Both transports (the default).
    pub const ALL: Transports = Transports {
        polling: true,
        websocket: true,
    };
    /// Polling only.
    pub const POLLING: Transports = Transports {
        polling: true,
        websocket: false,
    };
    /// WebSocket only.
    pub const WEBSOCKET: Transports = Transports {
        polling: false,
        websocket: true,
    };
}

impl Default for Transports {
    fn default() -> Self {
        Transports::ALL
    }
}

/// Sees every session open and close, whatever handler the engine has: the
/// cluster counts sessions per worker with it.
pub trait SessionObserver: Send + Sync + 'static {
    /// A session opened.
    fn opened(&self, sid: &crate::Sid);
    /// A session closed.
    fn closed(&self, sid: &crate::Sid);
}

/// Decides whether a handshake may open a session: `Ok(())` to accept, or
/// `Err(message)` to refuse with `403 {"code":4,"message":message}`.
pub type AllowRequest = Arc<dyn Fn(&Handshake) -> Result<(), String> + Send + Sync>;

/// Engine options. Build with [`EngineConfig::default`] and the setters; the
/// defaults are Node's.
///
/// ```
/// use std::time::Duration;
/// use iocluster_engineio::EngineConfig;
/// let config = EngineConfig::default()
///     .path("/engine.io/")
///     .ping_interval(Duration::from_millis(300))
///     .max_payload(1_000_000);
/// assert_eq!(config.path, "/engine.io/");
/// ```
#[derive(Clone)]
pub struct EngineConfig {
    /// Where the engine is mounted, with a trailing slash. Default
    /// `/socket.io/`.
    pub path: String,
    /// How often the server pings. Default 25 s (`pingInterval`).
    pub ping_interval: Duration,
    /// How long the server waits for a pong. Default 20 s (`pingTimeout`).
    pub ping_timeout: Duration,
    /// How long an upgrade may take. Default 10 s (`upgradeTimeout`).
    pub upgrade_timeout: Duration,
    /// The largest polling body or WebSocket message accepted, in bytes.
    /// Default 1,000,000 (`maxHttpBufferSize`).
    pub max_payload: usize,
    /// The transports accepted. Default both.
    pub transports: Transports,
    /// Cross-origin requests; `None` (the default) sends no CORS headers.
    pub cors: Option<Cors>,
    /// The session cookie; `None` (the default) sets none.
    pub cookie: Option<CookieConfig>,
    /// A hook that accepts or refuses handshakes. Default: accept all.
    pub allow_request: Option<AllowRequest>,
    /// Makes session ids. Default [`RandomSid`].
    pub sid_generator: Arc<dyn SidGenerator>,
    /// How many messages may wait to be sent to one session; past it,
    /// [`Session::send`](crate::Session::send) refuses with
    /// [`SendError::BufferFull`](crate::SendError::BufferFull). Default 16,384.
    pub max_buffered_messages: usize,
    /// How many bytes of messages may wait to be sent to one session; past
    /// it, sends are refused as with `max_buffered_messages`. A message is
    /// counted whole even when its bytes are shared with other sessions (a
    /// broadcast): the bound is what one slow client may hold. Default
    /// 16 MiB.
    pub max_buffered_bytes: usize,
    /// Sees sessions open and close. Default none.
    pub session_observer: Option<Arc<dyn SessionObserver>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".to_owned(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            transports: Transports::ALL,
            cors: None,
            cookie: None,
            allow_request: None,
            sid_generator: Arc::new(RandomSid),
            max_buffered_messages: 16_384,
            max_buffered_bytes: 16 * 1024 * 1024,
            session_observer: None,
        }
    }
}

impl EngineConfig {
    /// Sets the path; a trailing slash is added when missing.
    pub fn path(mut self, path: &str) -> Self {
        let trimmed = path.trim_end_matches('/');
        self.path = format!("{trimmed}/");
        self
    }
    /// Sets `pingInterval`.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }
    /// Sets `pingTimeout`.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }
    /// Sets `upgradeTimeout`.
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.upgrade_timeout = timeout;
        self
    }
    /// Sets `maxHttpBufferSize`, the largest message or polling body.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }
    /// Sets the accepted transports.
    pub fn transports(mut self, transports: Transports) -> Self {
        self.transports = transports;
        self
    }
    /// Enables CORS.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.cors = Some(cors);
        self
    }
    /// Enables the session cookie.
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = Some(cookie);
        self
    }
    /// Sets the handshake hook.
    pub fn allow_request(
        mut self,
        hook: impl Fn(&Handshake) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.allow_request = Some(Arc::new(hook));
        self
    }
    /// Sets the session id generator.
    pub fn sid_generator(mut self, generator: impl SidGenerator) -> Self {
        self.sid_generator = Arc::new(generator);
        self
    }
    /// Sets the session observer.
    pub fn session_observer(mut self, observer: Arc<dyn SessionObserver>) -> Self {
        self.session_observer = Some(observer);
        self
    }
    /// Sets the per-session send buffer bound.
    pub fn max_buffered_messages(mut self, messages: usize) -> Self {
        self.max_buffered_messages = messages;
        self
    }
    /// Sets the bound in bytes of each session's send buffer.
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("transports", &self.transports)
            .field("cors", &self.cors)
            .field("cookie", &self.cookie)
            .field("allow_request", &self.allow_request.is_some())
            .field("max_buffered_messages", &self.max_buffered_messages)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .finish_non_exhaustive()
    }
}
