//! The load-balancer tests' shared half: three iocluster nodes synced by a
//! Redis of the test's own, a load balancer process started from a config
//! committed under `deploy/` (rendered with the test's ports), and the
//! scenarios every balancer must pass. Each `tests/lb_*.rs` only knows how
//! to render and start its balancer.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use iocluster_testkit::{
    ENGINE_PATH, Master, POLL_EVERY, PollingClient, PollingSession, RedisServer, Signal, WAIT,
    WsClient, WsConnection, connect_packet_sid, die_with_spawning_thread, free_port, http,
    send_signal, within,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::iocluster_bin;

/// The secret of the peered fleets' links.
pub const PEER_SECRET: &str = "the fleet's secret";

/// The placeholders of the committed configs for the three nodes, in order.
pub const BACKEND_PLACEHOLDERS: [&str; 3] = ["127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"];

/// Three iocluster nodes of two workers each, synced by a `redis-server` of
/// the test's own; everything is stopped by its PID when dropped.
pub struct Fleet {
    /// The nodes, in the order of the configs' placeholders.
    pub nodes: [Master; 3],
    // Dropped after the nodes.
    _redis: RedisServer,
}

impl Fleet {
    /// Starts Redis and the three nodes with `--redis`, 2 MB payloads (the
    /// 1 MB binary echo) and `args`; returns once every worker is ready.
    pub async fn start(args: &[&str]) -> Fleet {
        let redis = RedisServer::start().await;
        let url = redis.url();
        let mut all = vec!["--redis", url.as_str(), "--max-payload", "2000000"];
        all.extend_from_slice(args);
        let nodes = [
            Master::start(iocluster_bin(), 2, &all).await,
            Master::start(iocluster_bin(), 2, &all).await,
            Master::start(iocluster_bin(), 2, &all).await,
        ];
        Fleet {
            nodes,
            _redis: redis,
        }
    }

    /// Starts Redis and three nodes that forward each other's sessions:
    /// `start` plus, for each node, a peer port of its own and the fleet's
    /// secret (they find each other through Redis).
    pub async fn start_peered(args: &[&str]) -> Fleet {
        let redis = RedisServer::start().await;
        let url = redis.url();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let peer_listen = format!("127.0.0.1:{}", free_port());
            let mut all = vec![
                "--redis",
                url.as_str(),
                "--max-payload",
                "2000000",
                "--peer-listen",
                peer_listen.as_str(),
                "--peer-secret",
                PEER_SECRET,
            ];
            all.extend_from_slice(args);
            nodes.push(Master::start(iocluster_bin(), 2, &all).await);
        }
        let Ok(nodes) = <[Master; 3]>::try_from(nodes) else {
            unreachable!("three nodes were started")
        };
        Fleet {
            nodes,
            _redis: redis,
        }
    }

    /// The nodes' addresses, for the configs' placeholders.
    pub fn backends(&self) -> [SocketAddr; 3] {
        [self.nodes[0].addr, self.nodes[1].addr, self.nodes[2].addr]
    }
}

/// The committed `deploy/<path>`.
pub fn deploy_file(path: &str) -> String {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    std::fs::read_to_string(&committed)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", committed.display()))
}

/// `text` with every `from` replaced by `to`; panics if `file` has no
/// `from` (the configs document their placeholders).
pub fn substitute(text: &str, from: &str, to: &str, file: &str) -> String {
    assert!(text.contains(from), "{file} has no `{from}`");
    text.replace(from, to)
}

/// `text` with the nodes' placeholders replaced by `backends`.
pub fn substitute_backends(text: &str, backends: [SocketAddr; 3], file: &str) -> String {
    BACKEND_PLACEHOLDERS
        .into_iter()
        .zip(backends)
        .fold(text.to_owned(), |text, (placeholder, backend)| {
            substitute(&text, placeholder, &backend.to_string(), file)
        })
}

/// A new empty directory for one balancer's rendered config, logs, pid
/// file and sockets, removed when the [`Balancer`] is dropped.
pub fn scratch_dir(name: &str, port: u16) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("iocluster-lb-{name}-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

/// A running load balancer; stopped by its PID when dropped (SIGTERM, then
/// SIGKILL after 5 s), and its scratch directory removed. Should the test's
/// thread die without dropping it, the kernel sends it SIGTERM (not SIGKILL:
/// a balancer with worker processes stops them on SIGTERM).
pub struct Balancer {
    name: String,
    child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Balancer {
    /// Runs `command` with its output in `dir/output.log` and returns once
    /// `addr` accepts connections; panics with that log if it exits first
    /// or takes longer than [`WAIT`].
    pub async fn start(
        name: &str,
        mut command: std::process::Command,
        addr: SocketAddr,
        dir: PathBuf,
    ) -> Balancer {
        let log = std::fs::File::create(dir.join("output.log")).expect("a log file");
        die_with_spawning_thread(&mut command, Signal::SIGTERM);
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name} ({e}): is it installed?"));
        let mut balancer = Balancer {
            name: name.to_owned(),
            child,
            addr,
            dir,
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while TcpStream::connect(addr).await.is_err() {
            let exited = matches!(balancer.child.try_wait(), Ok(Some(_)));
            if exited || tokio::time::Instant::now() >= deadline {
                panic!("{name} did not start on {addr}:\n{}", balancer.log());
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        balancer
    }

    /// Re-requests `GET path` through the balancer until it answers 200:
    /// its routes are loaded and it reaches a node.
    pub async fn wait_until_routed(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let last = http(self.addr, "GET", path, b"").await;
            if matches!(&last, Ok(response) if response.status == 200) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{} did not route GET {path} within {WAIT:?}: {last:?}\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Its scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it wrote to stdout and stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("output.log")).unwrap_or_default()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // SIGTERM lets a balancer with worker processes stop them; SIGKILL
        // would leave them listening.
        if matches!(self.child.try_wait(), Ok(None)) {
            send_signal(self.child.id(), Signal::SIGTERM);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every scenario through the balancer at `lb`: long-polling, polling
/// upgraded to WebSocket, WebSocket only, a 1 MB binary echo, and a
/// broadcast from a client behind the balancer to every node.
pub async fn every_transport_and_broadcast(lb: SocketAddr, nodes: &[Master; 3]) {
    polling_session_with_echo_round_trips(lb).await;
    polling_upgraded_to_websocket_echoes(lb).await;
    let mut ws = WsClient::connect(lb)
        .await
        .expect("websocket-only connect through the balancer");
    ws.echo(1, "websocket-only").await.expect("websocket echo");
    binary_echo_of_one_megabyte(lb).await;
    broadcast_reaches_every_node(&mut ws, nodes).await;
    ws.close().await;
}

/// Handshake, CONNECT, then 20 `echo` round trips, each request on a new
/// TCP connection that the balancer routes on its own: stickiness (by
/// address or by the cookies the client sends back) keeps them on the
/// node that holds the session.
pub async fn polling_session_with_echo_round_trips(lb: SocketAddr) {
    let client = PollingClient::connect(lb)
        .await
        .expect("polling connect through the balancer");
    for ack in 0..20 {
        client
            .echo(ack, &format!("polling {ack}"))
            .await
            .unwrap_or_else(|e| panic!("polling echo {ack} through the balancer: {e}"));
    }
    client.close().await.expect("close the polling session");
}

/// The socket.io-client default: polling first, then the upgrade to a
/// WebSocket carrying the sid (and the session's cookies, as a browser
/// sends them), the probe, `5`, and events over it. Three sessions, opened
/// in turn and upgraded out of that order: a balancer that picks the
/// upgrade's node in turn instead of by the session's stickiness sends at
/// least one upgrade to a node that does not hold its session.
pub async fn polling_upgraded_to_websocket_echoes(lb: SocketAddr) {
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let session = PollingSession::open(lb).await.expect("handshake");
        session.post(&["40"]).await.expect("CONNECT");
        session
            .get_until(|p| connect_packet_sid(p).is_some())
            .await
            .expect("CONNECT answered over polling");
        sessions.push(session);
    }
    for (ack, index) in [0, 2, 1].into_iter().enumerate() {
        upgrade_and_echo(lb, &sessions[index], ack as u64).await;
    }
}

/// Upgrades `session` to a WebSocket through `lb` and echoes over it.
async fn upgrade_and_echo(lb: SocketAddr, session: &PollingSession, ack: u64) {
    let target = format!("{ENGINE_PATH}&transport=websocket&sid={}", session.sid);
    let cookie = session.cookies.header();
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
    let (ws, _) = WsConnection::connect_with_headers(lb, &target, &headers)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "WebSocket upgrade of {} through the balancer: {e}",
                session.sid
            )
        });
    let mut ws = WsClient::upgraded(ws, &session.sid);
    ws.send("2probe").await.expect("probe");
    let probe = ws.next_packet().await.expect("probe answer");
    assert_eq!(probe, "3probe");
    ws.send("5").await.expect("upgrade");
    let text = format!("upgraded {ack}");
    within(
        WAIT,
        "the echo ack over the upgraded WebSocket",
        ws.echo(ack, &text),
    )
    .await
    .expect("echo over the upgraded transport");
    ws.close().await;
}

/// A 1 MB binary argument echoed back over a websocket-only connection.
pub async fn binary_echo_of_one_megabyte(lb: SocketAddr) {
    let mut ws = WsClient::open(lb)
        .await
        .expect("WebSocket through the balancer");
    ws.connect_namespace("40").await.expect("CONNECT");
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(r#"451-9["echo",{"_placeholder":true,"num":0}]"#)
        .await
        .expect("binary event head");
    ws.send_binary(&payload).await;
    let echoed = within(WAIT, "the binary ack", async {
        loop {
            match ws.next_frame().await {
                Ok(Message::Text(text)) => {
                    if text.as_str().starts_with("461-9[") {
                        assert_eq!(text.as_str(), r#"461-9[{"_placeholder":true,"num":0}]"#);
                    }
                }
                Ok(Message::Binary(bytes)) => return bytes,
                Ok(_) => {}
                Err(error) => panic!("the WebSocket ended before the binary ack: {error}"),
            }
        }
    })
    .await;
    assert!(
        echoed.as_ref() == payload.as_slice(),
        "the 1 MB echo differs"
    );
    ws.close().await;
}

/// `broadcast` from a client behind the balancer reaches a client
/// connected directly to each of the three nodes.
pub async fn broadcast_reaches_every_node(sender: &mut WsClient, nodes: &[Master; 3]) {
    let mut direct = Vec::new();
    for node in nodes {
        direct.push(
            WsClient::connect(node.addr)
                .await
                .expect("a direct client of each node"),
        );
    }
    // Each worker subscribes to Redis when its namespace is created: repeat
    // the broadcast until every direct client has one.
    let mut got = [false; 3];
    let mut round = 0;
    within(
        Duration::from_secs(15),
        "a broadcast on every node",
        async {
            while got.contains(&false) {
                round += 1;
                sender
                    .send(&format!("42[\"broadcast\",\"round-{round}\"]"))
                    .await
                    .expect("broadcast");
                for (client, got) in direct.iter_mut().zip(got.iter_mut()) {
                    if *got {
                        continue;
                    }
                    let heard = tokio::time::timeout(Duration::from_millis(300), async {
                        loop {
                            match client.next_packet().await {
                                Ok(p) if p.starts_with("42[\"broadcast\",\"round-") => return,
                                Ok(_) => {}
                                Err(e) => panic!("a direct client failed: {e}"),
                            }
                        }
                    })
                    .await;
                    *got = heard.is_ok();
                }
            }
        },
    )
    .await;
    for client in direct {
        client.close().await;
    }
}

/// Six WebSocket clients connected through the balancer at once land on
/// all three nodes: the balancer spreads new sessions, and takes every
/// node for healthy. Returns how many landed on each node.
pub async fn new_sessions_spread_over_every_node(
    lb: SocketAddr,
    nodes: &[Master; 3],
) -> [usize; 3] {
    let mut pids_of_node = Vec::new();
    for node in nodes {
        pids_of_node.push(
            node.status()
                .await
                .pids()
                .into_iter()
                .collect::<HashSet<_>>(),
        );
    }
    let mut clients = Vec::new();
    let mut per_node = [0; 3];
    for i in 0..6 {
        let client = echoing_client(lb, i, "spread").await;
        let node = pids_of_node
            .iter()
            .position(|pids| pids.contains(&client.worker))
            .unwrap_or_else(|| panic!("client {i}'s worker {} is on no node", client.worker));
        per_node[node] += 1;
        clients.push(client);
    }
    for client in clients {
        client.close().await;
    }
    assert!(
        per_node.iter().all(|&n| n > 0),
        "six new sessions through the balancer reached the nodes {per_node:?} times"
    );
    per_node
}

/// A WebSocket-only client through the balancer at `lb`, once it has
/// echoed `<label> <i>` with ack id `i`.
pub async fn echoing_client(lb: SocketAddr, i: u64, label: &str) -> WsClient {
    let mut client = WsClient::connect(lb)
        .await
        .unwrap_or_else(|e| panic!("{label} client {i} through the balancer: {e}"));
    client
        .echo(i, &format!("{label} {i}"))
        .await
        .unwrap_or_else(|e| panic!("echo of {label} client {i}: {e}"));
    client
}

/// Clients whose sessions live on the other two nodes, served through the
/// first node's master only: a polling session opened on node 2 echoes
/// through node 1 (every request forwarded), one opened on node 3 upgrades
/// to WebSocket through node 1, and a broadcast from that WebSocket reaches
/// every node.
pub async fn sessions_of_other_nodes_through_one_master(nodes: &[Master; 3]) {
    let through = nodes[0].addr;
    let session = PollingSession::open(nodes[1].addr)
        .await
        .expect("a handshake on node 2")
        .via(through);
    session.post(&["40"]).await.expect("CONNECT through node 1");
    session
        .get_until(|p| connect_packet_sid(p).is_some())
        .await
        .expect("CONNECT answered through node 1");
    for ack in 0..5 {
        session
            .post(&[&format!("42{ack}[\"echo\",\"via node 1 {ack}\"]")])
            .await
            .expect("an echo through node 1");
        let expected = format!("43{ack}[\"via node 1 {ack}\"]");
        session
            .get_until(|p| p == expected)
            .await
            .unwrap_or_else(|e| panic!("echo {ack} answered through node 1: {e}"));
    }

    let upgraded = PollingSession::open(nodes[2].addr)
        .await
        .expect("a handshake on node 3")
        .via(through);
    upgraded.post(&["40"]).await.expect("CONNECT");
    upgraded
        .get_until(|p| connect_packet_sid(p).is_some())
        .await
        .expect("CONNECT answered");
    let target = format!("{ENGINE_PATH}&transport=websocket&sid={}", upgraded.sid);
    let (mut ws, _) = WsConnection::connect(through, &target)
        .await
        .expect("the upgrade through node 1");
    ws.send_text("2probe").await;
    match within(WAIT, "3probe", ws.next_frame()).await {
        Ok(Message::Text(text)) => assert_eq!(text.as_str(), "3probe"),
        other => panic!("no 3probe through node 1: {other:?}"),
    }
    ws.send_text("5").await;
    let mut client = WsClient::upgraded(ws, &upgraded.sid);
    client
        .echo(100, "upgraded through node 1")
        .await
        .expect("an echo over the forwarded WebSocket");
    broadcast_reaches_every_node(&mut client, nodes).await;
    client.close().await;
}

/// Connections the nodes handed to a worker to forward to another node
/// (`iocluster_forwarded_connections_total`, summed over the nodes).
pub async fn forwarded_connections(nodes: &[Master; 3]) -> u64 {
    let mut total = 0;
    for node in nodes {
        let metrics = http(node.admin, "GET", "/metrics", b"")
            .await
            .expect("GET /metrics");
        total += metrics
            .text()
            .lines()
            .find_map(|line| line.strip_prefix("iocluster_forwarded_connections_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("the forwarded connections counter");
    }
    total
}
