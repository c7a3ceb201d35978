//! Redis connections with the settings the adapter relies on.

use std::time::Duration;

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::ClientLike;
use fred::types::Builder;
use fred::types::config::{Config, ReconnectPolicy};

use crate::error::Error;

/// How many pub/sub messages wait for the adapter before the oldest are
/// dropped (fred's broadcast channel).
const MESSAGE_BUFFER: usize = 16_384;

/// How long a command may wait, reconnections included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

fn builder(url: &str) -> Result<Builder, Error> {
    let mut builder = Builder::from_config(Config::from_url(url)?);
    builder
        // Reconnect forever, every 200 ms: Redis restarting must not end
        // the server's link to it.
        .set_policy(ReconnectPolicy::new_constant(0, 200))
        .with_performance_config(|config| {
            config.broadcast_channel_capacity = MESSAGE_BUFFER;
            config.default_command_timeout = COMMAND_TIMEOUT;
        })
        .with_connection_config(|config| {
            config.connection_timeout = COMMAND_TIMEOUT;
        });
    Ok(builder)
}

/// A connected client for publishing and commands (`redis://host:port`),
/// reconnecting forever, commands timing out after 5 s.
///
/// ```no_run
/// # async fn run() -> Result<(), iocluster_redis::Error> {
/// let client = iocluster_redis::connect_client("redis://127.0.0.1:6379").await?;
/// let emitter = iocluster_redis::Emitter::new(client);
/// emitter.emit("hello", "world").await?;
/// # Ok(())
/// # }
/// ```
pub async fn connect_client(url: &str) -> Result<Client, Error> {
    let client = builder(url)?.build()?;
    client.init().await?;
    Ok(client)
}

/// A connected subscriber client (`redis://host:port`) with the same
/// settings, its subscriptions restored after each reconnection by the
/// adapter.
pub async fn connect_subscriber(url: &str) -> Result<SubscriberClient, Error> {
    let client = builder(url)?.build_subscriber_client()?;
    client.init().await?;
    Ok(client)
}
