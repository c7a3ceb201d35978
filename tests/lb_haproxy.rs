//! A real HAProxy in front of three iocluster nodes synced by Redis, with
//! the committed config `deploy/haproxy/haproxy.cfg`: its health checks
//! (`HEAD /health`) pass for every node, polling clients stick to their
//! node by the `io` cookie HAProxy prefixes, every transport works through
//! it, and broadcasts reach every node.
//!
//! Needs the `haproxy` binary (`apt-get install haproxy`; scripts/test.sh
//! installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use iocluster_testkit::{
    POLL_EVERY, PollingSession, WAIT, free_port, one_cluster_at_a_time, run_on_big_stack,
    try_within,
};
use support::lb::{self, Balancer, Fleet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where Debian's package puts HAProxy.
const HAPROXY: &str = "/usr/sbin/haproxy";

/// The config, under deploy/.
/// The round-robin config for nodes that forward each other's sessions.
const ROUND_ROBIN_CONFIG: &str = "haproxy-roundrobin/haproxy.cfg";

const CONFIG: &str = "haproxy/haproxy.cfg";

/// Renders the committed config for `backends` (the documented
/// substitution: `bind :8080`, `127.0.0.1:3001..3003` and the stats socket
/// path), starts HAProxy in the foreground on it and returns once it
/// accepts connections. The stats socket is `stats.sock` in its directory.
async fn start_haproxy(config: &str, backends: [SocketAddr; 3]) -> Balancer {
    let binary = if Path::new(HAPROXY).exists() {
        HAPROXY
    } else {
        "haproxy"
    };
    let port = free_port();
    let dir = lb::scratch_dir("haproxy", port);
    let mut text = lb::substitute_backends(&lb::deploy_file(config), backends, config);
    text = lb::substitute(
        &text,
        "bind :8080",
        &format!("bind 127.0.0.1:{port}"),
        config,
    );
    let socket = dir.join("stats.sock");
    text = lb::substitute(
        &text,
        "/run/haproxy/iocluster.sock",
        &socket.display().to_string(),
        config,
    );
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, text).expect("write the rendered config");
    let mut command = std::process::Command::new(binary);
    // -db: stay in the foreground, no master process: the PID we hold is
    // the one process that serves.
    command.arg("-db").arg("-f").arg(&conf);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Balancer::start("haproxy", command, addr, dir).await
}

/// `show stat` on the stats socket: one map of column name to value per
/// proxy and server line.
async fn show_stat(
    socket: &Path,
) -> std::io::Result<Vec<std::collections::HashMap<String, String>>> {
    let text = try_within(WAIT, "HAProxy's stats socket", async {
        let mut stream = tokio::net::UnixStream::connect(socket).await?;
        stream.write_all(b"show stat\n").await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok(text)
    })
    .await?;
    let mut lines = text.lines();
    let header = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| std::io::Error::other(format!("not `show stat` output: {text:?}")))?;
    let columns: Vec<&str> = header.split(',').collect();
    Ok(lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            columns
                .iter()
                .zip(line.split(','))
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect()
        })
        .collect())
}

/// Waits until HAProxy's health checks have run and passed for node1..3:
/// each is UP with the check result `L7OK` (a layer-7 check got the
/// expected status, 200 to `HEAD /health`).
async fn wait_for_passing_health_checks(haproxy: &Balancer) {
    let socket: PathBuf = haproxy.dir().join("stats.sock");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // HAProxy may accept connections on its port a moment before its
        // stats socket exists.
        let stats = match show_stat(&socket).await {
            Ok(stats) => stats,
            Err(error)
                if error.kind() == std::io::ErrorKind::NotFound
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
            Err(error) => panic!("show stat: {error}\n{}", haproxy.log()),
        };
        let servers: Vec<(String, String, String)> = stats
            .iter()
            .filter(|row| row["pxname"] == "iocluster" && row["svname"].starts_with("node"))
            .map(|row| {
                (
                    row["svname"].clone(),
                    row["status"].clone(),
                    row["check_status"].clone(),
                )
            })
            .collect();
        let passing = servers
            .iter()
            .filter(|(_, status, check)| status == "UP" && check == "L7OK")
            .count();
        if servers.len() == 3 && passing == 3 {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "HAProxy's health checks did not pass for every node within {WAIT:?}: \
                 {servers:?}\n{}",
                haproxy.log()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[test]
fn haproxy_in_front_of_three_redis_nodes_serves_every_transport_and_broadcasts() {
    run_on_big_stack(haproxy_scenario);
}

async fn haproxy_scenario() {
    let _serial = one_cluster_at_a_time().await;
    // --cookie: the nodes set the `io` cookie HAProxy routes on.
    let fleet = Fleet::start(&["--cookie"]).await;
    let haproxy = start_haproxy(CONFIG, fleet.backends()).await;
    wait_for_passing_health_checks(&haproxy).await;

    // The cookie HAProxy hands out names the node: `io=node<N>~<sid>`.
    let session = PollingSession::open(haproxy.addr)
        .await
        .expect("a polling handshake through HAProxy");
    let cookie = session.cookies.get("io").expect("an io cookie");
    assert!(
        cookie.starts_with("node") && cookie.ends_with(&format!("~{}", session.sid)),
        "the io cookie through HAProxy is {cookie:?}, sid {}",
        session.sid
    );
    session.post(&["1"]).await.expect("close the session");

    lb::new_sessions_spread_over_every_node(haproxy.addr, &fleet.nodes).await;
    lb::every_transport_and_broadcast(haproxy.addr, &fleet.nodes).await;
    drop(haproxy);
}

#[test]
fn round_robin_haproxy_without_cookies_serves_every_transport_when_nodes_forward_sessions() {
    run_on_big_stack(round_robin_scenario);
}

async fn round_robin_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let fleet = Fleet::start_peered(&[]).await;
    let haproxy = start_haproxy(ROUND_ROBIN_CONFIG, fleet.backends()).await;
    wait_for_passing_health_checks(&haproxy).await;
    lb::every_transport_and_broadcast(haproxy.addr, &fleet.nodes).await;
    lb::new_sessions_spread_over_every_node(haproxy.addr, &fleet.nodes).await;
    assert!(
        lb::forwarded_connections(&fleet.nodes).await > 0,
        "round-robin sent no request to a node that does not own its session"
    );
    drop(haproxy);
}
