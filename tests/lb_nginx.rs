//! A real nginx in front of three iocluster nodes synced by Redis, with the
//! committed configs `deploy/nginx/nginx.conf` (sticky by client address)
//! and `deploy/nginx-websocket-only/nginx.conf` (round-robin): every
//! transport works through it, and broadcasts reach every node.
//!
//! Needs the `nginx` binary (`apt-get install nginx`; scripts/test.sh
//! installs it).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::{
    ENGINE_PATH, Master, PollingClient, PollingSession, RedisServer, WAIT, WsClient,
    connect_packet_sid, echo_ack, echo_packet, io_within, within,
};
use tokio_tungstenite::tungstenite::Message;

/// Where Debian's package puts nginx.
const NGINX: &str = "/usr/sbin/nginx";

/// A running nginx with a config rendered from a committed file; stopped by
/// its PID when dropped.
struct Nginx {
    child: std::process::Child,
    /// Where it listens.
    addr: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    /// Renders `deploy/<config>/nginx.conf` for `backends` (the documented
    /// substitution: `listen 8080` and `127.0.0.1:3001..3003`), starts
    /// nginx on it and returns once it accepts connections.
    async fn start(config: &str, backends: [SocketAddr; 3]) -> Nginx {
        let binary = if Path::new(NGINX).exists() {
            NGINX
        } else {
            "nginx"
        };
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(config)
            .join("nginx.conf");
        let mut text = std::fs::read_to_string(&committed)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", committed.display()));
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "iocluster-lb-nginx-{}-{config}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        for (placeholder, backend) in ["127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"]
            .into_iter()
            .zip(backends)
        {
            assert!(text.contains(placeholder), "{config} has no {placeholder}");
            text = text.replace(placeholder, &backend.to_string());
        }
        assert!(
            text.contains("listen 8080;"),
            "{config} has no `listen 8080;`"
        );
        text = text.replace("listen 8080;", &format!("listen 127.0.0.1:{port};"));
        // Keep every file nginx writes inside the test's own directory.
        let d = dir.display();
        let own_paths = format!(
            "http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    \
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    \
             uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
        );
        text = text.replacen("http {\n", &own_paths, 1);
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, text).expect("write the rendered config");
        let log = std::fs::File::create(dir.join("stderr.log")).expect("a log file");
        let child = std::process::Command::new(binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}/nginx.pid; error_log stderr;",
                dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run nginx ({e}): install it with `apt-get install nginx`")
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut nginx = Nginx { child, addr, dir };
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            let exited = matches!(nginx.child.try_wait(), Ok(Some(_)));
            if exited || tokio::time::Instant::now() >= deadline {
                panic!("nginx did not start on {addr}:\n{}", nginx.log());
            }
            tokio::time::sleep(support::POLL_EVERY).await;
        }
        nginx
    }

    /// What nginx wrote to stderr.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM (fast shutdown) lets the master stop its workers; SIGKILL
        // would leave them listening.
        if matches!(self.child.try_wait(), Ok(None)) {
            support::signal(self.child.id(), "TERM");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[test]
fn nginx_in_front_of_three_redis_nodes_serves_every_transport_and_broadcasts() {
    // The scenario's futures nest deeply and are large in debug builds: run
    // it on a thread with room for them.
    std::thread::Builder::new()
        .stack_size(32 * 1024 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(nginx_scenario())
        })
        .expect("thread")
        .join()
        .expect("scenario");
}

async fn nginx_scenario() {
    assert!(
        Path::new(NGINX).exists()
            || std::process::Command::new("nginx")
                .arg("-v")
                .stderr(Stdio::null())
                .status()
                .is_ok(),
        "nginx is not installed: install it with `apt-get install nginx`"
    );
    let _serial = support::one_cluster_at_a_time().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--max-payload", "2000000"];
    let nodes = [
        Master::start(2, &args).await,
        Master::start(2, &args).await,
        Master::start(2, &args).await,
    ];
    let backends = [nodes[0].addr, nodes[1].addr, nodes[2].addr];
    let sticky = Nginx::start("nginx", backends).await;

    polling_session_with_echo_round_trips(sticky.addr).await;
    polling_upgraded_to_websocket_echoes(sticky.addr).await;
    let mut ws = WsClient::connect(sticky.addr)
        .await
        .expect("websocket-only connect through nginx");
    ws.echo(1, "websocket-only").await.expect("websocket echo");
    binary_echo_of_one_megabyte(sticky.addr).await;
    broadcast_reaches_every_node(&mut ws, &nodes).await;
    ws.close().await;

    let round_robin = Nginx::start("nginx-websocket-only", backends).await;
    let mut clients = Vec::new();
    for i in 0..6 {
        let mut client = WsClient::connect(round_robin.addr)
            .await
            .unwrap_or_else(|e| panic!("websocket-only client {i}: {e}"));
        client
            .echo(i, &format!("round-robin {i}"))
            .await
            .unwrap_or_else(|e| panic!("echo of websocket-only client {i}: {e}"));
        clients.push(client);
    }
    for client in clients {
        client.close().await;
    }
    drop(round_robin);
    drop(sticky);
}

/// Handshake, CONNECT, then 20 `echo` round trips, each request on a new
/// TCP connection: the hash of 127.0.0.1 keeps them on one node.
async fn polling_session_with_echo_round_trips(nginx: SocketAddr) {
    let client = PollingClient::connect(nginx)
        .await
        .expect("polling connect through nginx");
    for ack in 0..20 {
        client
            .echo(ack, &format!("polling {ack}"))
            .await
            .unwrap_or_else(|e| panic!("polling echo {ack} through nginx: {e}"));
    }
    client.close().await.expect("close the polling session");
}

/// The socket.io-client default: polling first, then the upgrade to a
/// WebSocket carrying the sid, the probe, `5`, and events over it.
async fn polling_upgraded_to_websocket_echoes(nginx: SocketAddr) {
    let session = PollingSession::open(nginx).await.expect("handshake");
    session.post(&["40"]).await.expect("CONNECT");
    session
        .get_until(|p| connect_packet_sid(p).is_some())
        .await
        .expect("CONNECT answered over polling");
    let url = format!(
        "ws://{nginx}{ENGINE_PATH}&transport=websocket&sid={}",
        session.sid
    );
    let (mut ws, _) = within(WAIT, "the upgrade handshake", async {
        tokio_tungstenite::connect_async(url).await
    })
    .await
    .expect("WebSocket upgrade through nginx");
    ws.send(Message::text("2probe")).await.expect("probe");
    let probe = next_text(&mut ws).await.expect("probe answer");
    assert_eq!(probe, "3probe");
    ws.send(Message::text("5")).await.expect("upgrade");
    ws.send(Message::text(echo_packet(7, "upgraded")))
        .await
        .expect("echo over the upgraded transport");
    let expected = echo_ack(7, "upgraded");
    within(WAIT, "the echo ack over the upgraded WebSocket", async {
        while next_text(&mut ws).await.expect("a packet") != expected {}
    })
    .await;
    let _ = ws.close(None).await;
}

/// A 1 MB binary argument echoed back over a websocket-only connection.
async fn binary_echo_of_one_megabyte(nginx: SocketAddr) {
    let url = format!("ws://{nginx}{ENGINE_PATH}&transport=websocket");
    let (mut ws, _) = within(WAIT, "the WebSocket handshake", async {
        tokio_tungstenite::connect_async(url).await
    })
    .await
    .expect("WebSocket through nginx");
    ws.send(Message::text("40")).await.expect("CONNECT");
    within(WAIT, "CONNECT", async {
        while connect_packet_sid(&next_text(&mut ws).await.expect("a packet")).is_none() {}
    })
    .await;
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::text(
        r#"451-9["echo",{"_placeholder":true,"num":0}]"#,
    ))
    .await
    .expect("binary event head");
    ws.send(Message::binary(payload.clone()))
        .await
        .expect("binary attachment");
    let echoed = within(WAIT, "the binary ack", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    ws.send(Message::text("3")).await.expect("pong");
                }
                Some(Ok(Message::Text(text))) => {
                    if text.as_str().starts_with("461-9[") {
                        assert_eq!(text.as_str(), r#"461-9[{"_placeholder":true,"num":0}]"#);
                    }
                }
                Some(Ok(Message::Binary(bytes))) => return bytes,
                Some(Ok(_)) => {}
                other => panic!("the WebSocket ended before the binary ack: {other:?}"),
            }
        }
    })
    .await;
    assert!(
        echoed.as_ref() == payload.as_slice(),
        "the 1 MB echo differs"
    );
    let _ = ws.close(None).await;
}

/// `broadcast` from a client behind nginx reaches a client connected
/// directly to each of the three nodes.
async fn broadcast_reaches_every_node(sender: &mut WsClient, nodes: &[Master; 3]) {
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

/// The next text frame, answering pings.
async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> std::io::Result<String> {
    io_within(WAIT, "a WebSocket text frame", async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                    ws.send(Message::text("3"))
                        .await
                        .map_err(std::io::Error::other)?;
                }
                Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        }
    })
    .await
}
