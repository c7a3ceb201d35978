//! Cluster options, and the engine options the master passes to workers.

use std::net::SocketAddr;
use std::time::Duration;

use iocluster_engineio::{CookieConfig, Cors, CorsOrigin, EngineConfig, Transports};
use iocluster_socketio::RecoveryConfig;
use serde::{Deserialize, Serialize};

/// How the master picks a worker for a request that names no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// A worker at random.
    Random,
    /// Each ready worker in turn.
    RoundRobin,
    /// The worker with the fewest live sessions plus connections handed
    /// over but not yet reported.
    LeastConnection,
    /// A hash of the client's IP address (nginx `ip_hash`).
    IpHash,
    /// A hash of `X-Forwarded-For` (behind a proxy), else of the address.
    ForwardedFor,
}

impl Balance {
    /// The method's name on the command line (`least-connection`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::Random => "random",
            Balance::RoundRobin => "round-robin",
            Balance::LeastConnection => "least-connection",
            Balance::IpHash => "ip-hash",
            Balance::ForwardedFor => "forwarded-for",
        }
    }
}

impl std::fmt::Display for Balance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Balance {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Balance::Random),
            "round-robin" => Ok(Balance::RoundRobin),
            "least-connection" => Ok(Balance::LeastConnection),
            "ip-hash" => Ok(Balance::IpHash),
            "forwarded-for" => Ok(Balance::ForwardedFor),
            other => Err(format!(
                "unknown balancing method {other:?}: use random, round-robin, least-connection, ip-hash or forwarded-for"
            )),
        }
    }
}

/// The Engine.IO options every worker applies, set once on the master's
/// command line and passed to workers in their environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineOptions {
    /// Path, default `/socket.io/`.
    pub path: String,
    /// `pingInterval` in ms.
    pub ping_interval_ms: u64,
    /// `pingTimeout` in ms.
    pub ping_timeout_ms: u64,
    /// `maxHttpBufferSize` in bytes.
    pub max_payload: usize,
    /// Polling allowed.
    pub polling: bool,
    /// WebSocket allowed.
    pub websocket: bool,
    /// Allowed CORS origins; `*` allows any; empty: CORS closed.
    pub cors_origins: Vec<String>,
    /// CORS with credentials.
    pub cors_credentials: bool,
    /// Set the `io` cookie.
    pub cookie: bool,
    /// With CORS origins set: accept WebSocket upgrades from any origin
    /// anyway (for non-browser clients that send a foreign `Origin`).
    #[serde(default)]
    pub websocket_any_origin: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        let engine = EngineConfig::default();
        EngineOptions {
            path: engine.path,
            ping_interval_ms: engine.ping_interval.as_millis() as u64,
            ping_timeout_ms: engine.ping_timeout.as_millis() as u64,
            max_payload: engine.max_payload,
            polling: true,
            websocket: true,
            cors_origins: Vec::new(),
            cors_credentials: false,
            cookie: false,
            websocket_any_origin: false,
        }
    }
}

impl EngineOptions {
    /// The engine configuration these options describe.
    pub fn to_engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::default()
            .path(&self.path)
            .ping_interval(Duration::from_millis(self.ping_interval_ms))
            .ping_timeout(Duration::from_millis(self.ping_timeout_ms))
            .max_payload(self.max_payload)
            .transports(Transports {
                polling: self.polling,
                websocket: self.websocket,
            });
        if let Some(cors) = self.cors() {
            config = config.cors(cors);
        }
        if self.cookie {
            config = config.cookie(CookieConfig::default());
        }
        config
    }

    /// The CORS policy these options describe; none: CORS closed.
    pub fn cors(&self) -> Option<Cors> {
        if self.cors_origins.is_empty() {
            return None;
        }
        let origin = if self.cors_origins.iter().any(|o| o == "*") {
            CorsOrigin::Any
        } else {
            CorsOrigin::List(self.cors_origins.clone())
        };
        Some(
            Cors::new(origin)
                .credentials(self.cors_credentials)
                .check_websocket_origin(!self.websocket_any_origin),
        )
    }
}

/// The Socket.IO options every worker applies, set once on the master's
/// command line and passed to workers in their environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketIoOptions {
    /// Connection state recovery (Node's `connectionStateRecovery`); none
    /// (the default, as in Node): off.
    pub recovery: Option<RecoveryOptions>,
    /// Serve the client bundle at `/socket.io/socket.io.min.js` and its
    /// siblings (Node's `serveClient`); default on.
    #[serde(default = "serve_client_default")]
    pub serve_client: bool,
}

fn serve_client_default() -> bool {
    true
}

impl Default for SocketIoOptions {
    fn default() -> Self {
        SocketIoOptions {
            recovery: None,
            serve_client: serve_client_default(),
        }
    }
}

/// Connection state recovery, as the command line sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryOptions {
    /// `maxDisconnectionDuration` in ms (default 2 minutes).
    pub max_disconnection_ms: u64,
    /// `skipMiddlewares` (default true, as in Node).
    pub skip_middlewares: bool,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        let node = RecoveryConfig::default();
        RecoveryOptions {
            max_disconnection_ms: u64::try_from(node.max_disconnection_duration.as_millis())
                .unwrap_or(u64::MAX),
            skip_middlewares: node.skip_middlewares,
        }
    }
}

impl RecoveryOptions {
    /// The Socket.IO recovery configuration these options describe.
    pub fn to_recovery_config(&self) -> RecoveryConfig {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(self.max_disconnection_ms),
            skip_middlewares: self.skip_middlewares,
            ..RecoveryConfig::default()
        }
    }
}

/// How a node reaches the other nodes of its fleet, to serve requests for
/// their sessions (so the fleet needs no sticky balancer).
#[derive(Clone, Default)]
pub struct PeerConfig {
    /// This node's number (in every session id it makes); none (the
    /// default): random at each start. Set it for a static peer list.
    pub node_id: Option<u32>,
    /// Where this node listens for its peers; none (the default): no peer
    /// link, and a request for another node's session gets `400 Session ID
    /// unknown`. Never the public port: a private network.
    pub listen: Option<SocketAddr>,
    /// The address the other nodes use to reach this one (default:
    /// `listen`).
    pub advertise: Option<SocketAddr>,
    /// The secret every peer link is authenticated with (required with
    /// `listen` or `peers`).
    pub secret: Option<String>,
    /// The other nodes, by number, for a fleet without a registry.
    pub peers: Vec<(crate::NodeId, SocketAddr)>,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("node_id", &self.node_id)
            .field("listen", &self.listen)
            .field("advertise", &self.advertise)
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .field("peers", &self.peers)
            .finish()
    }
}

/// HTTPS on the public port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate chain and key (PEM), read again on SIGHUP.
    pub files: crate::tls::TlsFiles,
    /// Answer a plain-HTTP request on the TLS port with a redirect to
    /// `https://` instead of a 400.
    pub redirect_http: bool,
}

/// The master's options. Every default is here, and the `iocluster`
/// command line shows and uses these same values.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Where to listen. Default `127.0.0.1:3000`.
    pub listen: SocketAddr,
    /// How many workers. Default: the number of CPUs.
    pub workers: usize,
    /// How to pick a worker for new sessions. Default least-connection.
    pub balance: Balance,
    /// How long a client may take to send its first request head.
    /// Default 10 s.
    pub head_timeout: Duration,
    /// The largest request head, in bytes. Default 16 KiB.
    pub max_head: usize,
    /// How long a graceful shutdown may take before workers are killed.
    /// Default 10 s.
    pub shutdown_timeout: Duration,
    /// A worker that stays up this long resets its slot's restart backoff
    /// (the next exit is restarted after 100 ms again, and status counts
    /// its restarts from zero). Default 30 s.
    pub backoff_reset: Duration,
    /// The listen backlog: connections the kernel queues while the master
    /// has not accepted them. Default 65,535, which the kernel lowers to
    /// `net.core.somaxconn` (4,096 by default since Linux 5.4). A burst
    /// larger than the queue (a reconnect storm) waits for the clients'
    /// SYN retransmits, 1, 3, 7, 15 s...; with 1,024, a storm of 10,000
    /// took 32 s to readmit, 27 s with this default (one run each).
    pub backlog: u32,
    /// Runtime threads in each worker; none (the default): the CPUs shared
    /// out among the workers, at least one (see
    /// [`ClusterConfig::threads_per_worker`]).
    pub worker_threads: Option<usize>,
    /// The admin endpoint (`/status`); none: off. Default
    /// [`ClusterConfig::DEFAULT_ADMIN`], on loopback.
    pub admin: Option<SocketAddr>,
    /// Whether the admin endpoint may listen on an address other than
    /// loopback (it has no authentication: only on a private network).
    /// Default false: a public admin address is an error at startup.
    pub admin_public: bool,
    /// Engine options for the workers.
    pub engine: EngineOptions,
    /// Socket.IO options for the workers.
    pub socketio: SocketIoOptions,
    /// The other nodes of the fleet.
    pub peers: PeerConfig,
    /// HTTPS on the public port; none (the default): plain HTTP.
    pub tls: Option<TlsConfig>,
}

impl ClusterConfig {
    /// Where the admin endpoint listens unless told otherwise: loopback,
    /// port 3300.
    pub const DEFAULT_ADMIN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3300);

    /// The runtime threads each worker runs: `worker_threads`, else the
    /// CPUs divided among the workers, at least one. With one worker per
    /// CPU (the default) every worker is single-threaded, as Node's and
    /// nginx's workers are: no work stealing between threads that compete
    /// for the same cores, and no wake-ups across threads.
    pub fn threads_per_worker(&self) -> usize {
        self.worker_threads
            .unwrap_or_else(|| {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                cpus / self.workers.max(1)
            })
            .max(1)
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            balance: Balance::LeastConnection,
            head_timeout: Duration::from_secs(10),
            max_head: 16 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            backoff_reset: Duration::from_secs(30),
            backlog: 65_535,
            worker_threads: None,
            admin: Some(ClusterConfig::DEFAULT_ADMIN),
            admin_public: false,
            engine: EngineOptions::default(),
            socketio: SocketIoOptions::default(),
            peers: PeerConfig::default(),
            tls: None,
        }
    }
}
