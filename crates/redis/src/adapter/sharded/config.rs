//! The sharded adapter's options.

use std::time::Duration;

/// Which channels a server subscribes to (Node's `subscriptionMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// `"static"`: two channels per namespace (`{prefix}#{nsp}#` and the
    /// server's response channel); every broadcast reaches every server.
    /// Suits many dynamic namespaces.
    Static,
    /// `"dynamic"` (the default): plus one channel per public room
    /// (`{prefix}#{nsp}#{room}#`), subscribed while the room has a local
    /// socket, so a broadcast to one room reaches only the servers that
    /// have it. A socket's own room has no channel: a broadcast to a room
    /// whose name is 20 characters long (a socket id) goes to the
    /// namespace channel.
    #[default]
    Dynamic,
    /// `"dynamic-private"`: like `Dynamic`, sockets' own rooms included
    /// (for much 1:1 messaging).
    DynamicPrivate,
}

impl SubscriptionMode {
    /// Node's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionMode::Static => "static",
            SubscriptionMode::Dynamic => "dynamic",
            SubscriptionMode::DynamicPrivate => "dynamic-private",
        }
    }
}

impl std::str::FromStr for SubscriptionMode {
    type Err = String;

    /// Node's names: `static`, `dynamic`, `dynamic-private`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "static" => Ok(SubscriptionMode::Static),
            "dynamic" => Ok(SubscriptionMode::Dynamic),
            "dynamic-private" => Ok(SubscriptionMode::DynamicPrivate),
            other => Err(format!(
                "unknown subscription mode \"{other}\" (static, dynamic or dynamic-private)"
            )),
        }
    }
}

/// Options of the sharded Redis adapter, named and defaulted as Node's
/// `createShardedAdapter` options.
///
/// ```
/// use iocluster_redis::{ShardedRedisAdapterConfig, SubscriptionMode};
/// let config = ShardedRedisAdapterConfig::default()
///     .channel_prefix("myapp")
///     .subscription_mode(SubscriptionMode::Static);
/// assert_eq!(config.channel_prefix, "myapp");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedRedisAdapterConfig {
    /// The channel prefix (`channelPrefix`). Default `socket.io`.
    pub channel_prefix: String,
    /// `subscriptionMode`. Default [`SubscriptionMode::Dynamic`].
    pub subscription_mode: SubscriptionMode,
    /// How long requests to other servers wait (Node's `ClusterAdapter`
    /// waits 5 s, or the broadcast's own timeout). Default 5 s.
    pub requests_timeout: Duration,
}

impl Default for ShardedRedisAdapterConfig {
    fn default() -> Self {
        ShardedRedisAdapterConfig {
            channel_prefix: "socket.io".to_owned(),
            subscription_mode: SubscriptionMode::Dynamic,
            requests_timeout: Duration::from_millis(5000),
        }
    }
}

impl ShardedRedisAdapterConfig {
    /// Sets the channel prefix.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }
    /// Sets the subscription mode.
    pub fn subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.subscription_mode = mode;
        self
    }
    /// Sets the requests timeout.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }
}
