//! The adapter's options.

use std::time::Duration;

/// Options of the Redis adapter, named and defaulted as Node's.
///
/// ```
/// use std::time::Duration;
/// use iocluster_redis::RedisAdapterConfig;
/// let config = RedisAdapterConfig::default().key("myapp").requests_timeout(Duration::from_secs(2));
/// assert_eq!(config.key, "myapp");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAdapterConfig {
    /// The channel prefix (`key`). Default `socket.io`.
    pub key: String,
    /// How long requests to other servers wait (`requestsTimeout`).
    /// Default 5 s.
    pub requests_timeout: Duration,
    /// Whether responses go to the requester's own channel
    /// (`publishOnSpecificResponseChannel`). Default false.
    pub publish_on_specific_response_channel: bool,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        RedisAdapterConfig {
            key: "socket.io".to_owned(),
            requests_timeout: Duration::from_millis(5000),
            publish_on_specific_response_channel: false,
        }
    }
}

impl RedisAdapterConfig {
    /// Sets the channel prefix.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }
    /// Sets the requests timeout.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }
    /// Sets `publishOnSpecificResponseChannel`.
    pub fn publish_on_specific_response_channel(mut self, on: bool) -> Self {
        self.publish_on_specific_response_channel = on;
        self
    }
}
