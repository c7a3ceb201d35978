//! What the interop tests share: a `redis-server` of their own on a free
//! loopback port, the Node peer (`tests/js/redis/peer.js`: socket.io with
//! @socket.io/redis-adapter, socket.io-client sockets, the Node emitter),
//! and an iocluster server with the Redis adapter.
//!
//! Every wait is bounded by [`STEP`]; processes are stopped by PID when
//! their handle drops.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use iocluster_redis::{
    RedisAdapterConfig, RedisAdapterFactory, ShardedRedisAdapterConfig, ShardedRedisAdapterFactory,
};
use iocluster_socketio::{Payload, Server, ServerConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Notify, oneshot};

/// The longest any single wait may take before the test fails.
pub const STEP: Duration = Duration::from_secs(10);

/// Awaits `future`, failing the test when it takes longer than [`STEP`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(STEP, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out after {STEP:?} waiting for {what}"),
    }
}

/// A port nobody listens on now (bound then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------------------
// redis-server
// ---------------------------------------------------------------------------

/// A `redis-server` of this test only, on 127.0.0.1, nothing saved.
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port; returns once it accepts connections.
    pub async fn start() -> RedisServer {
        RedisServer::start_on(free_port()).await
    }

    /// Starts one on `port`.
    pub async fn start_on(port: u16) -> RedisServer {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        within("redis-server to accept connections", async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return;
                }
            }
            panic!("redis-server exited before it was ready");
        })
        .await;
        // Keep reading its log so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        RedisServer {
            port,
            child: Some(child),
        }
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL by PID) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = within("redis-server to exit", child.wait()).await;
        }
    }
}

/// A Redis Cluster of this test only: three masters (no replicas) on free
/// loopback ports, each a `redis-server --cluster-enabled yes` with its
/// config in a directory of its own, joined by `redis-cli --cluster create`.
pub struct RedisCluster {
    /// The nodes' ports.
    pub ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three nodes and creates the cluster; returns once every slot
    /// is served (`cluster_state:ok` on every node).
    pub async fn start() -> RedisCluster {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!(
            "iocluster-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the nodes' configs");
        let mut cluster = RedisCluster {
            ports: ports.clone(),
            children: Vec::new(),
            dir,
        };
        for port in &ports {
            let config = cluster.dir.join(format!("nodes-{port}.conf"));
            // The bus port must be free too (by default it is port + 10000:
            // past 65535 for high ephemeral ports, or taken).
            let bus_port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-port", &bus_port.to_string()])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                ])
                .arg("--cluster-config-file")
                .arg(&config)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server must be installed (scripts/test.sh installs it)");
            let stdout = child.stdout.take().expect("piped stdout");
            let mut lines = BufReader::new(stdout).lines();
            within("a cluster node to accept connections", async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("Ready to accept connections") {
                        return;
                    }
                }
                panic!("redis-server exited before it was ready");
            })
            .await;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            cluster.children.push(child);
        }
        let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .arg("--cluster-yes")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .status();
        let created = within("redis-cli --cluster create", created)
            .await
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create: {created}");
        within("the cluster to be ok on every node", async {
            for port in &ports {
                loop {
                    let info = Command::new("redis-cli")
                        .args([
                            "-h",
                            "127.0.0.1",
                            "-p",
                            &port.to_string(),
                            "cluster",
                            "info",
                        ])
                        .output()
                        .await
                        .expect("redis-cli runs");
                    if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
        .await;
        cluster
    }

    /// `redis-cluster://127.0.0.1:port` of its first node (fred finds the
    /// others).
    pub fn url(&self) -> String {
        format!("redis-cluster://127.0.0.1:{}", self.ports[0])
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------
// The Node peer
// ---------------------------------------------------------------------------

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js/redis")
}

/// Installs the Node peer's packages (`npm ci`) when they are missing.
fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = js_dir();
        if dir.join("node_modules/.package-lock.json").exists() {
            return;
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("npm must be installed to run the Node interop peers");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

#[derive(Default)]
struct PeerState {
    replies: HashMap<u64, oneshot::Sender<Result<Value, String>>>,
    events: Vec<Value>,
}

/// A Node process: a socket.io server with the Redis adapter, plus
/// socket.io-client sockets, driven by JSON commands.
pub struct NodePeer {
    /// The port of its socket.io server.
    pub port: u16,
    child: Child,
    stdin: ChildStdin,
    state: Arc<Mutex<PeerState>>,
    changed: Arc<Notify>,
    next_id: u64,
}

impl NodePeer {
    /// Starts the peer on the Redis at `redis_port`; returns once its
    /// adapter is subscribed.
    pub async fn start(redis_port: u16) -> NodePeer {
        NodePeer::start_with(redis_port, &[]).await
    }

    /// Starts the peer on the Redis Cluster that has a node at
    /// `redis_port` (ioredis `Cluster` clients).
    pub async fn start_on_cluster(redis_port: u16) -> NodePeer {
        NodePeer::start_with(redis_port, &["cluster"]).await
    }

    /// Starts the peer with `createShardedAdapter` in subscription mode
    /// `mode` (`static`, `dynamic`, `dynamic-private`), on the Redis
    /// Cluster that has a node at `redis_port` (ioredis `Cluster` clients
    /// with `shardedSubscribers`); returns once Redis counts its
    /// subscriptions.
    pub async fn start_sharded_on_cluster(redis_port: u16, mode: &str) -> NodePeer {
        NodePeer::start_with(redis_port, &["sharded-cluster", mode]).await
    }

    /// The same on a standalone Redis 7.
    pub async fn start_sharded(redis_port: u16, mode: &str) -> NodePeer {
        NodePeer::start_with(redis_port, &["sharded", mode]).await
    }

    async fn start_with(redis_port: u16, args: &[&str]) -> NodePeer {
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg(js_dir().join("peer.js"))
            .arg(redis_port.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the Node interop peers");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let state = Arc::new(Mutex::new(PeerState::default()));
        let changed = Arc::new(Notify::new());
        let (ready_tx, ready_rx) = oneshot::channel();
        let reader_state = Arc::clone(&state);
        let reader_changed = Arc::clone(&changed);
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(message) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let Some(port) = message["ready"]["port"].as_u64() {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(port as u16);
                    }
                } else if let Some(id) = message["id"].as_u64() {
                    let reply = match message.get("error") {
                        Some(error) => Err(error.to_string()),
                        None => Ok(message["result"].clone()),
                    };
                    let waiter = reader_state.lock().unwrap().replies.remove(&id);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(reply);
                    }
                } else {
                    reader_state.lock().unwrap().events.push(message);
                    reader_changed.notify_waiters();
                }
            }
        });
        let port = within("the Node peer to be ready", ready_rx)
            .await
            .expect("the Node peer exited before it was ready");
        NodePeer {
            port,
            child,
            stdin,
            state,
            changed,
            next_id: 1,
        }
    }

    /// The URL of its socket.io server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs a command (`{"cmd": …, …}`); its result, or the error message.
    pub async fn call(&mut self, mut command: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        let (tx, rx) = oneshot::channel();
        self.state.lock().unwrap().replies.insert(id, tx);
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the Node peer");
        within(&format!("the Node peer to answer {command}"), rx)
            .await
            .expect("the Node peer exited")
    }

    /// Sends a command without waiting for its result.
    pub async fn send(&mut self, mut command: Value) {
        command["id"] = json!(self.next_id);
        self.next_id += 1;
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the Node peer");
    }

    /// Runs a command that must succeed.
    pub async fn ok(&mut self, command: Value) -> Value {
        match self.call(command.clone()).await {
            Ok(result) => result,
            Err(error) => panic!("Node peer command {command} failed: {error}"),
        }
    }

    /// Connects a Node client named `name` to `url`; returns its socket id.
    pub async fn connect(&mut self, name: &str, url: &str) -> String {
        let result = self
            .ok(json!({"cmd": "connect", "name": name, "url": url}))
            .await;
        result["id"].as_str().expect("socket id").to_owned()
    }

    /// Makes client `name` join `room` on its server (acked).
    pub async fn join(&mut self, name: &str, room: &str) {
        let reply = self
            .ok(json!({"cmd": "clientEmitWithAck", "name": name, "ev": "join", "args": [room]}))
            .await;
        assert_eq!(reply, json!("joined"));
    }

    /// Waits for an event line matching `matches`; returns it.
    pub async fn event(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        within(what, async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(event) = self
                    .state
                    .lock()
                    .unwrap()
                    .events
                    .iter()
                    .find(|e| matches(e))
                {
                    return event.clone();
                }
                changed.await;
            }
        })
        .await
    }

    /// The events client `name` received, by event name, in order.
    pub fn received(&self, name: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|e| e["event"] == "client" && e["name"] == name)
            .map(|e| e["ev"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until client `name` received event `ev`; returns its arguments.
    pub async fn client_event(&self, name: &str, ev: &str) -> Value {
        let event = self
            .event(&format!("client {name} to receive {ev}"), |e| {
                e["event"] == "client" && e["name"] == name && e["ev"] == ev
            })
            .await;
        event["args"].clone()
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
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
}

impl Factory {
    /// Waits until namespace `nsp` is subscribed.
    pub async fn subscribed(&self, nsp: &str) -> bool {
        match self {
            Factory::Classic(factory) => factory.subscribed(nsp).await,
            Factory::Sharded(factory) => factory.subscribed(nsp).await,
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
    events: Arc<Mutex<Vec<ServerEvent>>>,
    changed: Arc<Notify>,
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
        let factory = within(
            "the adapter to connect",
            RedisAdapterFactory::connect(url, config),
        )
        .await
        .expect("connect to redis");
        let io = Server::with_adapter(ServerConfig::default(), factory.clone());
        RustServer::serve(io, Factory::Classic(factory)).await
    }

    /// Starts one with the sharded adapter.
    pub async fn start_sharded(url: &str, config: ShardedRedisAdapterConfig) -> RustServer {
        let factory = within(
            "the sharded adapter to connect",
            ShardedRedisAdapterFactory::connect(url, config),
        )
        .await
        .expect("connect to redis");
        let io = Server::with_adapter(ServerConfig::default(), factory.clone());
        RustServer::serve(io, Factory::Sharded(factory)).await
    }

    async fn serve(io: Server, factory: Factory) -> RustServer {
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
        let events = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        for name in ["hello", "ping-server"] {
            let events = Arc::clone(&events);
            let changed = Arc::clone(&changed);
            io.of("/").on_server_event(name, move |payload, ack| {
                events.lock().unwrap().push(ServerEvent {
                    name: name.to_owned(),
                    payload,
                });
                changed.notify_waiters();
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
            within("the adapter to subscribe", factory.subscribed("/")).await,
            "the main namespace has a Redis adapter"
        );
        RustServer {
            io,
            factory,
            addr,
            events,
            changed,
            serving,
        }
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits for a server-side event named `name`.
    pub async fn server_event(&self, name: &str) -> ServerEvent {
        within(&format!("server-side event {name}"), async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Some(event) = self.events.lock().unwrap().iter().find(|e| e.name == name) {
                    return event.clone();
                }
                changed.await;
            }
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
