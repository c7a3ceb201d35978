//! The streams adapter's options.

use std::time::Duration;

/// Options of the Redis streams adapter, named and defaulted as Node's
/// `createAdapter` of @socket.io/redis-streams-adapter 0.2 (plus the
/// heartbeat options of socket.io-adapter's `ClusterAdapterWithHeartbeat`).
///
/// ```
/// use iocluster_redis::RedisStreamsAdapterConfig;
/// let config = RedisStreamsAdapterConfig::default().stream_name("myapp").max_len(50_000);
/// assert_eq!(config.stream_name, "myapp");
/// assert_eq!(config.session_key_prefix, "sio:session:");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStreamsAdapterConfig {
    /// The stream every server writes to and reads (`streamName`).
    /// Default `socket.io`.
    pub stream_name: String,
    /// The stream's length bound, trimmed approximately (`XADD … MAXLEN ~`,
    /// `maxLen`). It also bounds how far back a client can recover.
    /// Default 10,000.
    pub max_len: u64,
    /// Entries read per `XREAD` (`readCount`). Default 100.
    pub read_count: u64,
    /// How long an `XREAD` blocks waiting for entries (the `BLOCK` Node's
    /// adapter passes with the `redis` package; 0.3 calls it
    /// `blockTimeInMs`). Default 5 s.
    pub block_time: Duration,
    /// The prefix of the keys sessions are kept under for recovery
    /// (`sessionKeyPrefix`), followed by the session's private id.
    /// Default `sio:session:`.
    pub session_key_prefix: String,
    /// How often this server tells the others it is alive, when it has
    /// published nothing else (`heartbeatInterval`). Default 5 s.
    pub heartbeat_interval: Duration,
    /// How long a server that published nothing counts as alive
    /// (`heartbeatTimeout`). Default 10 s.
    pub heartbeat_timeout: Duration,
    /// How long requests to other servers wait (Node's `ClusterAdapter`:
    /// 5 s, or the operator's own timeout). Default 5 s.
    pub requests_timeout: Duration,
    /// With connection state recovery: also keep the session of each
    /// *connected* socket in Redis (written when it connects, joins or
    /// leaves a room, and refreshed every half
    /// `max_disconnection_duration`), so a client whose server died
    /// without a word (killed, crashed, unplugged) recovers on another
    /// server. Node's adapter writes a session only when its socket
    /// disconnects, which a dead server never does. Default true.
    pub persist_connected_sessions: bool,
}

impl Default for RedisStreamsAdapterConfig {
    fn default() -> Self {
        RedisStreamsAdapterConfig {
            stream_name: "socket.io".to_owned(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".to_owned(),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            requests_timeout: Duration::from_secs(5),
            persist_connected_sessions: true,
        }
    }
}

impl RedisStreamsAdapterConfig {
    /// Sets the stream name.
    pub fn stream_name(mut self, name: impl Into<String>) -> Self {
        self.stream_name = name.into();
        self
    }
    /// Sets the stream's approximate length bound.
    pub fn max_len(mut self, max_len: u64) -> Self {
        self.max_len = max_len;
        self
    }
    /// Sets the entries read per `XREAD`.
    pub fn read_count(mut self, count: u64) -> Self {
        self.read_count = count.max(1);
        self
    }
    /// Sets how long an `XREAD` blocks.
    pub fn block_time(mut self, time: Duration) -> Self {
        self.block_time = time;
        self
    }
    /// Sets the prefix of session keys.
    pub fn session_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.session_key_prefix = prefix.into();
        self
    }
    /// Sets the heartbeat interval and timeout.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.heartbeat_interval = interval;
        self.heartbeat_timeout = timeout;
        self
    }
    /// Sets the requests timeout.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }
    /// Whether connected sockets' sessions are kept in Redis too.
    pub fn persist_connected_sessions(mut self, on: bool) -> Self {
        self.persist_connected_sessions = on;
        self
    }
}
