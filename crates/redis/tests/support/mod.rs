//! What only the Redis interop tests need, on top of `iocluster-testkit`
//! (which has `redis-server`, the Redis Cluster and the Node peer): an
//! iocluster Socket.IO server with the Redis adapter.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

pub mod fleet;

use std::net::SocketAddr;
use std::sync::Arc;

use iocluster_redis::{
    RedisAdapterConfig, RedisAdapterFactory, RedisStreamsAdapterConfig, RedisStreamsAdapterFactory,
    ShardedRedisAdapterConfig, ShardedRedisAdapterFactory,
};
use iocluster_socketio::{Payload, RecoveryConfig, Server, ServerConfig};
use iocluster_testkit::{EventLog, WAIT, within};
use serde_json::{Value, json};

/// The first argument of each reply, sorted (replies come in any order).
pub fn sorted_first_args(replies: &[Payload]) -> Vec<Value> {
    let mut firsts: Vec<Value> = replies.iter().map(|p| p.args[0].clone()).collect();
    firsts.sort_by_key(Value::to_string);
    firsts
}

// ---------------------------------------------------------------------------
// An iocluster server with the Redis adapter
// ---------------------------------------------------------------------------

/// A server-side event our server received.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    /// The event name.
    pub name: String,
    /// Its arguments.
    pub payload: Payload,
}

/// The adapter factory of a [`RustServer`].
#[derive(Clone)]
pub enum Factory {
    /// The classic adapter.
    Classic(RedisAdapterFactory),
    /// The sharded adapter.
    Sharded(ShardedRedisAdapterFactory),
    /// The streams adapter.
    Streams(RedisStreamsAdapterFactory),
}

impl Factory {
    /// Waits until namespace `nsp` is subscribed.
    pub async fn subscribed(&self, nsp: &str) -> bool {
        match self {
            Factory::Classic(factory) => factory.subscribed(nsp).await,
            Factory::Sharded(factory) => factory.subscribed(nsp).await,
            Factory::Streams(factory) => factory.started().await,
        }
    }
}

/// An iocluster Socket.IO server on 127.0.0.1 using the Redis adapter.
///
/// Its clients can `join` a room (acked with `"joined"`); its socket data
/// is `{"server":"rust"}`; it answers the server-side events `hello` and
/// `ping-server` with `"rust-pong"`.
pub struct RustServer {
    /// The server.
    pub io: Server,
    /// Its adapter factory.
    pub factory: Factory,
    /// Where it listens.
    pub addr: SocketAddr,
    events: Arc<EventLog<ServerEvent>>,
    serving: tokio::task::JoinHandle<()>,
}

impl RustServer {
    /// Starts one on the Redis at `url`; returns once its main namespace
    /// is subscribed.
    pub async fn start(url: &str) -> RustServer {
        RustServer::start_with(url, RedisAdapterConfig::default()).await
    }

    /// Starts one with adapter options.
    pub async fn start_with(url: &str, config: RedisAdapterConfig) -> RustServer {
        let connect = RedisAdapterFactory::connect(url, config);
        let factory = within(WAIT, "the adapter to connect", connect).await;
        RustServer::serve(Factory::Classic(factory.expect("connect to redis"))).await
    }

    /// Starts one with the sharded adapter.
    pub async fn start_sharded(url: &str, config: ShardedRedisAdapterConfig) -> RustServer {
        let connect = ShardedRedisAdapterFactory::connect(url, config);
        let factory = within(WAIT, "the sharded adapter to connect", connect).await;
        RustServer::serve(Factory::Sharded(factory.expect("connect to redis"))).await
    }

    /// Starts one with the streams adapter and connection state recovery
    /// on (Node's defaults).
    pub async fn start_streams(url: &str, config: RedisStreamsAdapterConfig) -> RustServer {
        RustServer::start_streams_with(url, config, RecoveryConfig::default()).await
    }

    /// The same with recovery options.
    pub async fn start_streams_with(
        url: &str,
        config: RedisStreamsAdapterConfig,
        recovery: RecoveryConfig,
    ) -> RustServer {
        let connect = RedisStreamsAdapterFactory::connect(url, config);
        let factory = within(WAIT, "the streams adapter to connect", connect).await;
        let factory = factory.expect("connect to redis");
        let io = Server::with_adapter(ServerConfig::default().recovery(recovery), factory.clone());
        RustServer::serve_io(io, Factory::Streams(factory)).await
    }

    async fn serve(factory: Factory) -> RustServer {
        let io = match &factory {
            Factory::Classic(classic) => {
                Server::with_adapter(ServerConfig::default(), classic.clone())
            }
            Factory::Sharded(sharded) => {
                Server::with_adapter(ServerConfig::default(), sharded.clone())
            }
            Factory::Streams(streams) => Server::with_adapter(
                ServerConfig::default().recovery(RecoveryConfig::default()),
                streams.clone(),
            ),
        };
        RustServer::serve_io(io, factory).await
    }

    async fn serve_io(io: Server, factory: Factory) -> RustServer {
        io.on_connection(|socket| {
            socket.set_data(json!({"server": "rust"}));
            socket.on("join", |socket, payload, ack| {
                if let Ok(room) = payload.arg::<String>(0) {
                    socket.join([room]);
                }
                if let Some(ack) = ack {
                    let _ = ack.send("joined");
                }
            });
        });
        let events = Arc::new(EventLog::default());
        for name in ["hello", "ping-server"] {
            let events = Arc::clone(&events);
            io.of("/").on_server_event(name, move |payload, ack| {
                events.push(ServerEvent {
                    name: name.to_owned(),
                    payload,
                });
                if let Some(ack) = ack {
                    ack(Payload::from("rust-pong"));
                }
            });
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let router = io.router();
        let serving = tokio::spawn(async move {
            let _ = iocluster_engineio::serve(listener, router).await;
        });
        assert!(
            within(WAIT, "the adapter to subscribe", factory.subscribed("/")).await,
            "the main namespace has a Redis adapter"
        );
        RustServer {
            io,
            factory,
            addr,
            events,
            serving,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for a server-side event named `name`.
    pub async fn server_event(&self, name: &str) -> ServerEvent {
        let what = format!("server-side event {name}");
        self.events
            .wait_for(WAIT, &what, |events| {
                events.iter().find(|e| e.name == name).cloned()
            })
            .await
    }
}

impl Drop for RustServer {
    fn drop(&mut self) {
        self.io.close();
        self.serving.abort();
    }
}
