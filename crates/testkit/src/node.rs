//! The Node peer `tests/js/redis/peer.js`: a socket.io 4.8 server with
//! @socket.io/redis-adapter (or @socket.io/redis-streams-adapter),
//! socket.io-client sockets to any server, and
//! @socket.io/redis-emitter, driven by one JSON command per line on its
//! stdin; it answers and reports events one JSON object per line on its
//! stdout. The Redis interop tests of crates/redis and the mixed fleets of
//! the root tests use it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{ChildStdin, Command};
use tokio::sync::oneshot;

use crate::event_log::EventLog;
use crate::process::TestProcess;
use crate::wait::{WAIT, within};

/// The peer's folder, with its own `package.json`.
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js/redis")
}

/// Installs the peer's packages (`npm ci`) when they are missing, once per
/// test binary. It runs to its end before the first peer starts, so it
/// needs no parent-death signal.
fn ensure_node_modules() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = peer_dir();
        if dir.join("node_modules/.package-lock.json").exists() {
            return;
        }
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("npm is installed (the Node interop peer needs it)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// The peer's answers not yet collected, by command id.
type Replies = Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>;

/// A running Node peer, killed by its PID when dropped (and ending by
/// itself when its stdin closes).
///
/// ```no_run
/// # async fn example() {
/// use iocluster_testkit::{NodePeer, RedisServer};
/// let redis = RedisServer::start().await;
/// let mut peer = NodePeer::start(redis.port).await;
/// let url = peer.url();
/// peer.connect("n1", &url).await;
/// peer.join("n1", "chat").await;
/// # }
/// ```
pub struct NodePeer {
    /// The port of its socket.io server.
    pub port: u16,
    _process: TestProcess,
    stdin: ChildStdin,
    replies: Arc<Replies>,
    events: Arc<EventLog<Value>>,
    next_id: u64,
}

impl NodePeer {
    /// Starts the peer on the Redis at `redis_port`; returns once its
    /// adapter is subscribed. Runs `npm ci` first if its packages are
    /// missing.
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

    /// Starts the peer with @socket.io/redis-streams-adapter (0.2, stream
    /// `socket.io`, one ioredis client) and connection state recovery on
    /// (Node's defaults); returns once its adapter reads the stream. It
    /// reports `{"event": "server-connection", "id", "recovered"}` for each
    /// socket its server accepts.
    pub async fn start_streams(redis_port: u16) -> NodePeer {
        NodePeer::start_with(redis_port, &["streams"]).await
    }

    async fn start_with(redis_port: u16, args: &[&str]) -> NodePeer {
        ensure_node_modules();
        let mut command = Command::new("node");
        command
            .arg(peer_dir().join("peer.js"))
            .arg(redis_port.to_string())
            .args(args);
        let mut process = TestProcess::spawn_with_stdin("node (the Redis interop peer)", command);
        let stdin = process.take_stdin().expect("stdin is piped");
        let mut lines = process.take_stdout_lines();
        let replies = Arc::new(Replies::default());
        let events = Arc::new(EventLog::default());
        let (ready_tx, ready_rx) = oneshot::channel();
        let (reader_replies, reader_events) = (Arc::clone(&replies), Arc::clone(&events));
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            while let Some(line) = lines.recv().await {
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
                    let waiter = lock(&reader_replies).remove(&id);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(reply);
                    }
                } else {
                    reader_events.push(message);
                }
            }
        });
        let port = match within(WAIT, "the Node peer to be ready", ready_rx).await {
            Ok(port) => port,
            Err(_) => panic!(
                "the Node peer exited before it was ready:\n{}",
                process.logs()
            ),
        };
        NodePeer {
            port,
            _process: process,
            stdin,
            replies,
            events,
            next_id: 1,
        }
    }

    /// The URL of its socket.io server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Writes `command` with the next id; returns the id.
    async fn write(&mut self, mut command: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the Node peer");
        id
    }

    /// Runs a command (`{"cmd": …, …}`); its result, or the error message.
    pub async fn call(&mut self, command: Value) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        lock(&self.replies).insert(self.next_id, tx);
        let what = format!("the Node peer to answer {command}");
        self.write(command).await;
        within(WAIT, &what, rx).await.expect("the Node peer exited")
    }

    /// Sends a command without waiting for its result.
    pub async fn send(&mut self, command: Value) {
        self.write(command).await;
    }

    /// Runs a command that must succeed; its result.
    pub async fn ok(&mut self, command: Value) -> Value {
        match self.call(command.clone()).await {
            Ok(result) => result,
            Err(error) => panic!("Node peer command {command} failed: {error}"),
        }
    }

    /// Connects a socket.io-client socket named `name` to `url` (WebSocket
    /// only); its socket id.
    pub async fn connect(&mut self, name: &str, url: &str) -> String {
        let result = self
            .ok(json!({"cmd": "connect", "name": name, "url": url}))
            .await;
        result["id"].as_str().expect("socket id").to_owned()
    }

    /// Client `name` emits `ev(args…)` and waits for the ack; its value.
    pub async fn client_emit(&mut self, name: &str, ev: &str, args: Value) -> Value {
        self.ok(json!({"cmd": "clientEmitWithAck", "name": name, "ev": ev, "args": args}))
            .await
    }

    /// Makes client `name` join `room` on its server (acked `"joined"`).
    pub async fn join(&mut self, name: &str, room: &str) {
        let reply = self.client_emit(name, "join", json!([room])).await;
        assert_eq!(reply, json!("joined"));
    }

    /// Waits for an event line matching `matches`; returns it.
    pub async fn event(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        self.events
            .wait_for(WAIT, what, |events| {
                events.iter().find(|e| matches(e)).cloned()
            })
            .await
    }

    /// The events client `name` received, by event name, in order.
    pub fn received(&self, name: &str) -> Vec<String> {
        self.received_with_args(name)
            .into_iter()
            .map(|(ev, _)| ev)
            .collect()
    }

    /// The events client `name` received, `(event name, arguments)`, in
    /// order.
    pub fn received_with_args(&self, name: &str) -> Vec<(String, Value)> {
        self.events.read(|events| {
            events
                .iter()
                .filter(|e| e["event"] == "client" && e["name"] == name)
                .map(|e| {
                    let ev = e["ev"].as_str().unwrap_or_default().to_owned();
                    (ev, e["args"].clone())
                })
                .collect()
        })
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

    /// Waits (up to `limit`) until client `name` received `ev` with
    /// arguments `args`.
    pub async fn wait_for(&self, limit: Duration, name: &str, ev: &str, args: &Value) {
        let what = format!("client {name} to receive {ev}{args}");
        self.events
            .wait_for(limit, &what, |events| {
                events
                    .iter()
                    .any(|e| {
                        e["event"] == "client"
                            && e["name"] == name
                            && e["ev"] == ev
                            && e["args"] == *args
                    })
                    .then_some(())
            })
            .await
    }
}

/// The replies waited for, even if a panicking test poisoned the lock.
fn lock(replies: &Replies) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Value, String>>>> {
    replies.lock().unwrap_or_else(|p| p.into_inner())
}
