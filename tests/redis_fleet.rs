//! A mixed fleet on one Redis: two iocluster nodes (masters with two
//! workers each, `--redis`) and one Node socket.io 4.8 server with
//! @socket.io/redis-adapter act as one server — broadcasts from any of them
//! reach every targeted client of all three exactly once, Node's
//! `fetchSockets` lists our sockets, the Node emitter and `iocluster emit`
//! reach everyone's clients — and Redis going away for a while neither
//! kills a worker nor stops local delivery, and cross-node delivery comes
//! back on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iocluster_testkit::{
    Master, NodePeer, RedisServer, WsClient, one_cluster_at_a_time, redis_cli, run_on_big_stack,
    within,
};
use serde_json::{Value, json};
use support::{iocluster_bin, tick};

/// How long a cross-server delivery may take in these tests.
const DELIVERY: Duration = Duration::from_secs(10);

/// The clients of the fleet scenario (socket.io-client sockets in the Node
/// peer): `a0`, `a1` on node A's two workers, `b0`, `b1` on node B's, `n0`,
/// `n1` on the Node server.
const CLIENTS: [&str; 6] = ["a0", "a1", "b0", "b1", "n0", "n1"];

/// The clients in room `r`: one per server.
const IN_ROOM: [&str; 3] = ["a0", "b1", "n0"];

/// What a received event is called in the expectations: `broadcast:TEXT`
/// for `broadcast(TEXT)`, `message:TEXT` for `message({text: TEXT, …})`.
fn label(ev: &str, args: &Value) -> String {
    let text = match ev {
        "message" => args[0]["text"].as_str(),
        _ => args[0].as_str(),
    };
    format!("{ev}:{}", text.unwrap_or("?"))
}

/// Who must receive each labelled event.
#[derive(Clone, Copy)]
enum Target {
    All,
    Room,
    ExceptRoom,
}

impl Target {
    fn includes(self, client: &str) -> bool {
        match self {
            Target::All => true,
            Target::Room => IN_ROOM.contains(&client),
            Target::ExceptRoom => !IN_ROOM.contains(&client),
        }
    }
}

/// Waits until every client has `broadcast(marker)`; the origin of the
/// marker sent it after its other broadcasts, through the same Redis
/// connection, so each client then has them all.
async fn wait_for_marker(peer: &NodePeer, marker: &str) {
    for name in CLIENTS {
        peer.wait_for(DELIVERY, name, "broadcast", &json!([marker]))
            .await;
    }
}

/// Each expected event reached exactly the clients it targets, once.
fn assert_exactly_once(peer: &NodePeer, expected: &[(String, Target)]) {
    for name in CLIENTS {
        let labels: Vec<String> = peer
            .received_with_args(name)
            .iter()
            .map(|(ev, args)| label(ev, args))
            .collect();
        for (wanted, target) in expected {
            let count = labels.iter().filter(|l| *l == wanted).count();
            let should = usize::from(target.includes(name));
            assert_eq!(
                count, should,
                "client {name} received {wanted} {count} times, not {should}; it received {labels:?}"
            );
        }
    }
}

/// Runs `iocluster emit --redis URL ARGS…`, which must exit 0.
async fn iocluster_emit(url: &str, args: &[&str]) {
    let status = tokio::process::Command::new(iocluster_bin())
        .args(["emit", "--redis", url])
        .args(args)
        .kill_on_drop(true)
        .status();
    let status = within(DELIVERY, "iocluster emit to exit", status)
        .await
        .expect("iocluster emit runs");
    assert!(status.success(), "iocluster emit {args:?}: {status}");
}

/// The worker pid in client `name`'s `welcome` event.
async fn welcome_worker(peer: &NodePeer, name: &str) -> u64 {
    let welcome = peer.client_event(name, "welcome").await;
    welcome[0]["worker"]
        .as_u64()
        .expect("welcome names its worker")
}

/// The socket ids in a `fetchSockets` answer of the Node peer.
fn ids(sockets: &Value) -> BTreeSet<String> {
    sockets
        .as_array()
        .expect("fetchSockets answers an array")
        .iter()
        .map(|s| s["id"].as_str().expect("socket id").to_owned())
        .collect()
}

#[test]
fn broadcasts_of_every_server_reach_every_targeted_client_of_the_fleet_once() {
    run_on_big_stack(fleet_scenario);
}

async fn fleet_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--balance", "round-robin"];
    let a = Master::start(iocluster_bin(), 2, &args).await;
    let b = Master::start(iocluster_bin(), 2, &args).await;
    let mut peer = NodePeer::start(redis.port).await;

    // Four workers and the Node server subscribed: Node counts five
    // servers (subscribers of the request channel).
    within(DELIVERY, "Node to count 5 servers", async {
        while peer.ok(json!({"cmd": "serverCount"})).await != json!(5) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let (a_url, b_url, n_url) = (
        format!("http://{}", a.addr),
        format!("http://{}", b.addr),
        peer.url(),
    );
    let mut socket_ids = Vec::new();
    for (name, url) in CLIENTS
        .iter()
        .zip([&a_url, &a_url, &b_url, &b_url, &n_url, &n_url])
    {
        socket_ids.push(peer.connect(name, url).await);
    }
    // Round-robin put one client on each worker of each node.
    for (first, second) in [("a0", "a1"), ("b0", "b1")] {
        let (w1, w2) = (
            welcome_worker(&peer, first).await,
            welcome_worker(&peer, second).await,
        );
        assert_ne!(w1, w2, "{first} and {second} are on different workers");
    }
    for name in IN_ROOM {
        peer.client_emit(name, "join", json!(["r"])).await;
    }

    // Node's fetchSockets lists the sockets of both nodes, with their rooms.
    // (The built-in app has no event that makes a request of ours, so our
    // `fetch_sockets` across the fleet is tested in crates/redis, with the
    // library: tests/adapter_interop.rs and tests/cluster.rs.)
    let all = peer.ok(json!({"cmd": "fetchSockets"})).await;
    assert_eq!(ids(&all), socket_ids.iter().cloned().collect());
    let in_room = peer
        .ok(json!({"cmd": "fetchSockets", "rooms": ["r"]}))
        .await;
    let expected: BTreeSet<String> = [0, 3, 4].map(|i| socket_ids[i].clone()).into();
    assert_eq!(ids(&in_room), expected, "fetchSockets in room r");
    let a0 = all
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == socket_ids[0].as_str()))
        .expect("a0 is listed");
    let mut a0_rooms: Vec<&str> = a0["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    a0_rooms.sort_unstable();
    let mut wanted_rooms = vec!["r", socket_ids[0].as_str()];
    wanted_rooms.sort_unstable();
    assert_eq!(a0_rooms, wanted_rooms, "a0's rooms as Node sees them");

    let mut expected = Vec::new();
    // From node A (a1, not in the room) and node B (b0, not in the room
    // either; b1 is): the built-in app's `broadcast` and `message`.
    for (origin, tag) in [("a1", "a"), ("b0", "b")] {
        peer.client_emit(origin, "broadcast", json!([format!("all-from-{tag}")]))
            .await;
        let room_text = format!("room-from-{tag}");
        peer.client_emit(origin, "message", json!(["r", room_text]))
            .await;
        let marker = format!("end-{tag}");
        peer.client_emit(origin, "broadcast", json!([marker])).await;
        wait_for_marker(&peer, &marker).await;
        expected.push((format!("broadcast:all-from-{tag}"), Target::All));
        expected.push((format!("message:{room_text}"), Target::Room));
        expected.push((format!("broadcast:{marker}"), Target::All));
        assert_exactly_once(&peer, &expected);
    }

    // From the Node server: to all, to the room, except the room.
    let emit = |rooms: Value, except: Value, ev: &str, args: Value| json!({"cmd": "emit", "rooms": rooms, "except": except, "ev": ev, "args": args});
    peer.ok(emit(
        json!([]),
        json!([]),
        "broadcast",
        json!(["all-from-node"]),
    ))
    .await;
    let room_message = json!([{"room": "r", "text": "room-from-node"}]);
    peer.ok(emit(json!(["r"]), json!([]), "message", room_message))
        .await;
    peer.ok(emit(
        json!([]),
        json!(["r"]),
        "broadcast",
        json!(["except-from-node"]),
    ))
    .await;
    peer.ok(emit(json!([]), json!([]), "broadcast", json!(["end-node"])))
        .await;
    wait_for_marker(&peer, "end-node").await;
    expected.push(("broadcast:all-from-node".into(), Target::All));
    expected.push(("message:room-from-node".into(), Target::Room));
    expected.push(("broadcast:except-from-node".into(), Target::ExceptRoom));
    expected.push(("broadcast:end-node".into(), Target::All));
    assert_exactly_once(&peer, &expected);

    // The Node emitter, to the room: our clients in it and Node's.
    let emitter = |rooms: Value, ev: &str, args: Value| json!({"cmd": "emitter", "rooms": rooms, "ev": ev, "args": args});
    let room_message = json!([{"room": "r", "text": "room-from-node-emitter"}]);
    peer.ok(emitter(json!(["r"]), "message", room_message))
        .await;
    peer.ok(emitter(json!([]), "broadcast", json!(["end-node-emitter"])))
        .await;
    wait_for_marker(&peer, "end-node-emitter").await;
    expected.push(("message:room-from-node-emitter".into(), Target::Room));
    expected.push(("broadcast:end-node-emitter".into(), Target::All));
    assert_exactly_once(&peer, &expected);

    // `iocluster emit`: to all, to the room, except the room; each call is
    // a new connection, done before the next one starts.
    iocluster_emit(&url, &["broadcast", "\"all-from-cli\""]).await;
    iocluster_emit(
        &url,
        &[
            "--to",
            "r",
            "message",
            r#"{"room":"r","text":"room-from-cli"}"#,
        ],
    )
    .await;
    iocluster_emit(&url, &["--except", "r", "broadcast", "\"except-from-cli\""]).await;
    iocluster_emit(&url, &["broadcast", "\"end-cli\""]).await;
    wait_for_marker(&peer, "end-cli").await;
    expected.push(("broadcast:all-from-cli".into(), Target::All));
    expected.push(("message:room-from-cli".into(), Target::Room));
    expected.push(("broadcast:except-from-cli".into(), Target::ExceptRoom));
    expected.push(("broadcast:end-cli".into(), Target::All));

    // A last marker from node A: whatever was late (a duplicate) would be
    // in by now.
    peer.client_emit("a1", "broadcast", json!(["end"])).await;
    wait_for_marker(&peer, "end").await;
    expected.push(("broadcast:end".into(), Target::All));
    assert_exactly_once(&peer, &expected);
    drop((a, b));
}

/// What one raw client read, and when.
type Received = Arc<Mutex<Vec<(Instant, String)>>>;

/// Reads `client`'s packets into the returned log until the task is
/// aborted (the reader answers pings; quiet stretches are not an error).
fn record(mut client: WsClient) -> (Received, tokio::task::JoinHandle<()>) {
    let log = Received::default();
    let writer = Arc::clone(&log);
    let task = tokio::spawn(async move {
        loop {
            match client.next_packet().await {
                // The flood's megabyte broadcasts are not kept.
                Ok(packet) if packet.len() > 1_000 => {}
                Ok(packet) => writer
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((Instant::now(), packet)),
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    (log, task)
}

/// When each tick reached the client of `log`.
fn arrivals(log: &Received) -> std::collections::BTreeMap<u64, Instant> {
    let log = log.lock().unwrap_or_else(|p| p.into_inner());
    let mut arrivals = std::collections::BTreeMap::new();
    for (at, packet) in log.iter() {
        if let Some(n) = tick(packet) {
            arrivals.entry(n).or_insert(*at);
        }
    }
    arrivals
}

/// Subscribers of the main namespace's request channel (`redis-cli`).
async fn request_subscribers(port: u16) -> u64 {
    let output = redis_cli(port, &["PUBSUB", "NUMSUB", "socket.io-request#/#"]).await;
    output
        .lines()
        .nth(1)
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// How long Redis stays away.
const OUTAGE: Duration = Duration::from_secs(5);

/// How soon after Redis is back cross-node delivery must resume.
const RESUME_WITHIN: Duration = Duration::from_secs(2);

/// From this long after Redis is back, nothing published may be lost: the
/// adapters have reconnected and resubscribed by then.
const LOSSLESS_AFTER: Duration = Duration::from_secs(1);

/// The flood sent through one worker while Redis is away: 100 broadcasts
/// of 1 MB.
const FLOOD: usize = 100;
const FLOOD_MESSAGE: usize = 1_000_000;

/// What the flood may add to the worker's memory: the publication queue's
/// byte bound (16 MiB, crates/redis) plus room for the broadcasts in
/// flight to its own clients (1 MB messages in each connection's buffers)
/// and for the allocator.
const FLOOD_RSS_LIMIT: u64 = 48 * 1024 * 1024;

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Emits `message(room, payload)` with ack `ack` (the built-in app emits
/// it to `room` on every server) and reads until the ack.
async fn message_and_wait(client: &mut WsClient, ack: u64, room: &str, payload: &str) {
    client
        .send(&format!("42{ack}[\"message\",\"{room}\",\"{payload}\"]"))
        .await
        .expect("send");
    let acked = format!("43{ack}[]");
    while client.next_packet().await.expect("a packet") != acked {}
}

/// The sender's pace.
const TICK_EVERY: Duration = Duration::from_millis(50);

#[test]
fn redis_down_for_five_seconds_keeps_workers_and_local_delivery_and_cross_node_resumes() {
    run_on_big_stack(outage_scenario);
}

async fn outage_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--balance",
        "round-robin",
        "--max-payload",
        "2000000",
    ];
    let a = Master::start(iocluster_bin(), 2, &args).await;
    let b = Master::start(iocluster_bin(), 2, &args).await;
    within(DELIVERY, "the 4 workers to subscribe", async {
        while request_subscribers(redis.port).await < 4 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let (a_pids, b_pids) = (a.status().await.pids(), b.status().await.pids());

    // Round-robin on node A: the sender and `local` share a worker,
    // `a_other` is on the other one (reached through Redis).
    let mut sender = WsClient::connect(a.addr).await.expect("sender connects");
    let a_other = WsClient::connect(a.addr).await.expect("client connects");
    let local = WsClient::connect(a.addr).await.expect("client connects");
    assert_eq!(sender.worker, local.worker, "round-robin over 2 workers");
    assert_ne!(sender.worker, a_other.worker, "round-robin over 2 workers");
    let on_b = WsClient::connect(b.addr).await.expect("client connects");
    // The flooder is the fourth client on node A: on a_other's worker.
    let mut flooder = WsClient::connect(a.addr).await.expect("client connects");
    let (local, local_task) = record(local);
    let (a_other, a_other_task) = record(a_other);
    let (on_b, on_b_task) = record(on_b);

    // One `broadcast(n)` every 50 ms until told to stop; the sender reads
    // what it is sent meanwhile (its own ticks, pings).
    let sent = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sent_by_sender = Arc::clone(&sent);
    let sending = tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK_EVERY);
        for n in 0u64.. {
            loop {
                tokio::select! {
                    _ = every.tick() => break,
                    _ = &mut stopped => return Some(sender),
                    packet = sender.next_packet() => match packet {
                        Ok(_) => {}
                        Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return None,
                    },
                }
            }
            let at = Instant::now();
            if sender
                .send(&format!("42[\"broadcast\",{n}]"))
                .await
                .is_err()
            {
                return None;
            }
            sent_by_sender
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(at);
        }
        None
    });

    // Steady state first: node B gets the ticks.
    within(DELIVERY, "ticks to reach node B", async {
        while arrivals(&on_b).len() < 5 {
            tokio::time::sleep(TICK_EVERY).await;
        }
    })
    .await;
    let flooded_worker = flooder.worker;
    let rss_before = rss(flooded_worker);
    redis.kill().await;
    let down = Instant::now();
    // 100 MB of broadcasts while Redis is away, to a room nobody is in
    // (what the worker does with them is the point, not who reads them):
    // it buffers what its publication queue's byte bound allows, and drops
    // the rest.
    let payload = "f".repeat(FLOOD_MESSAGE);
    for ack in 0..FLOOD as u64 {
        message_and_wait(&mut flooder, ack, "nobody", &payload).await;
    }
    let rss_flooded = rss(flooded_worker);
    assert!(
        rss_flooded < rss_before + FLOOD_RSS_LIMIT,
        "100 MB of broadcasts during the outage grew the worker from {rss_before} to {rss_flooded} bytes"
    );
    eprintln!("flood: worker RSS {rss_before} -> {rss_flooded} bytes");
    drop(payload);
    tokio::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;
    redis.restart().await;
    let up = Instant::now();
    tokio::time::sleep(RESUME_WITHIN + Duration::from_secs(1)).await;
    let _ = stop.send(());
    // The sender stays connected until its last tick is through: the ticks
    // still unread by its worker when it closed would go with it.
    let _sender = within(DELIVERY, "the sender to stop", sending)
        .await
        .expect("the sender task ends")
        .expect("the sender is still connected");
    // The last tick (sent through a healthy Redis) has reached every
    // client once node B has it.
    let last = sent.lock().unwrap_or_else(|p| p.into_inner()).len() as u64 - 1;
    within(DELIVERY, "the last tick to reach node B", async {
        while !arrivals(&on_b).contains_key(&last) {
            tokio::time::sleep(TICK_EVERY).await;
        }
    })
    .await;
    local_task.abort();
    a_other_task.abort();
    on_b_task.abort();

    let sent = sent.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (local, a_other, on_b) = (arrivals(&local), arrivals(&a_other), arrivals(&on_b));

    // No worker exited or was replaced.
    assert_eq!(a.status().await.pids(), a_pids, "node A's workers");
    assert_eq!(b.status().await.pids(), b_pids, "node B's workers");

    // Local delivery went on while Redis was away: every tick sent during
    // the outage reached the sender's worker's other client, promptly.
    let during: Vec<u64> = (0..sent.len() as u64)
        .filter(|&n| sent[n as usize] >= down && sent[n as usize] < up)
        .collect();
    assert!(during.len() >= 80, "ticks were sent during the outage");
    for n in &during {
        let at = local.get(n).unwrap_or_else(|| {
            panic!("tick {n}, sent while Redis was down, never reached the local client")
        });
        let took = at.duration_since(sent[*n as usize]);
        assert!(
            took < Duration::from_millis(500),
            "tick {n} took {took:?} locally"
        );
    }

    // Cross-node (and cross-worker) delivery resumed within 2 s of Redis
    // being back, and missed nothing sent from 1 s after it was back.
    let resumed = |arrivals: &std::collections::BTreeMap<u64, Instant>| {
        arrivals
            .iter()
            .filter(|(n, _)| sent[**n as usize] >= up)
            .map(|(_, at)| *at)
            .min()
            .map(|at| at.duration_since(up))
    };
    for (name, arrivals) in [("node B", &on_b), ("node A's other worker", &a_other)] {
        let took =
            resumed(arrivals).unwrap_or_else(|| panic!("{name} got nothing after Redis came back"));
        let late = during.iter().filter(|n| arrivals.contains_key(n)).count();
        eprintln!(
            "{name}: delivery resumed {took:?} after Redis was back; \
             {late} of the {} ticks sent while it was down arrived later",
            during.len()
        );
        assert!(took < RESUME_WITHIN, "{name} resumed after {took:?}");
        let missing: Vec<u64> = (0..sent.len() as u64)
            .filter(|&n| sent[n as usize] >= up + LOSSLESS_AFTER && !arrivals.contains_key(&n))
            .collect();
        assert!(
            missing.is_empty(),
            "{name} missed ticks {missing:?} sent after it resumed"
        );
    }
    drop((a, b));
}
