//! Server options, with Node's socket.io defaults.

use std::time::Duration;

use iocluster_engineio::EngineConfig;

use crate::parser::DecoderLimits;

/// Connection state recovery options (Node's `connectionStateRecovery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a disconnected socket's state and the packets it may miss
    /// are kept. Default 2 minutes.
    pub max_disconnection_duration: Duration,
    /// The most packets kept for recovery; older ones are dropped first.
    /// Default 10,000.
    pub max_packets: usize,
    /// Whether a recovered socket skips the namespace middlewares. Default
    /// true, as in Node.
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            max_packets: 10_000,
            skip_middlewares: true,
        }
    }
}

/// Server options.
///
/// ```
/// use std::time::Duration;
/// use iocluster_socketio::{RecoveryConfig, ServerConfig};
/// let config = ServerConfig::default()
///     .connect_timeout(Duration::from_secs(10))
///     .recovery(RecoveryConfig::default());
/// assert!(config.recovery.is_some());
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The Engine.IO options (path `/socket.io/` by default).
    pub engine: EngineConfig,
    /// How long a client may stay connected without joining a namespace.
    /// Default 45 s (`connectTimeout`).
    pub connect_timeout: Duration,
    /// Connection state recovery; off by default.
    pub recovery: Option<RecoveryConfig>,
    /// Limits of the packet decoder.
    pub decoder_limits: DecoderLimits,
    /// Whether the router serves the client bundle
    /// (`/socket.io/socket.io.min.js`, …). Default on (`serveClient`).
    pub serve_client: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            engine: EngineConfig::default(),
            connect_timeout: Duration::from_secs(45),
            recovery: None,
            decoder_limits: DecoderLimits::default(),
            serve_client: true,
        }
    }
}

impl ServerConfig {
    /// Sets the Engine.IO options.
    pub fn engine(mut self, engine: EngineConfig) -> Self {
        self.engine = engine;
        self
    }
    /// Sets `connectTimeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// Turns connection state recovery on.
    pub fn recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.recovery = Some(recovery);
        self
    }
    /// Serves the client bundle, or not (`serveClient`).
    pub fn serve_client(mut self, serve: bool) -> Self {
        self.serve_client = serve;
        self
    }
    /// Sets the decoder limits.
    pub fn decoder_limits(mut self, limits: DecoderLimits) -> Self {
        self.decoder_limits = limits;
        self
    }
}
