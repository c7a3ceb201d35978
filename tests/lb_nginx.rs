//! A real nginx in front of three iocluster nodes synced by Redis, with the
//! committed configs `deploy/nginx/nginx.conf` (sticky by client address),
//! `deploy/nginx-websocket-only/nginx.conf` (round-robin, WebSocket-only
//! clients) and `deploy/nginx-roundrobin/nginx.conf` (round-robin for every
//! client, the nodes forwarding each other's sessions): every transport
//! works through it, and broadcasts reach every node.
//!
//! Needs the `nginx` binary (`apt-get install nginx`; scripts/test.sh
//! installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use iocluster_testkit::{free_port, one_cluster_at_a_time, run_on_big_stack};
use support::lb::{self, Balancer, Fleet};

/// Where Debian's package puts nginx.
const NGINX: &str = "/usr/sbin/nginx";

/// Renders `deploy/<config>/nginx.conf` for `backends` (the documented
/// substitution: `listen 8080` and `127.0.0.1:3001..3003`), starts nginx on
/// it and returns once it accepts connections.
async fn start_nginx(config: &str, backends: [SocketAddr; 3]) -> Balancer {
    let binary = if Path::new(NGINX).exists() {
        NGINX
    } else {
        "nginx"
    };
    let file = format!("{config}/nginx.conf");
    let port = free_port();
    let dir = lb::scratch_dir(config, port);
    let mut text = lb::substitute_backends(&lb::deploy_file(&file), backends, &file);
    text = lb::substitute(
        &text,
        "listen 8080;",
        &format!("listen 127.0.0.1:{port};"),
        &file,
    );
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
    let mut command = std::process::Command::new(binary);
    command
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-g")
        .arg(format!("daemon off; pid {d}/nginx.pid; error_log stderr;"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    Balancer::start("nginx", command, addr, dir).await
}

#[test]
fn nginx_in_front_of_three_redis_nodes_serves_every_transport_and_broadcasts() {
    run_on_big_stack(nginx_scenario);
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
    let _serial = one_cluster_at_a_time().await;
    let fleet = Fleet::start(&[]).await;
    let sticky = start_nginx("nginx", fleet.backends()).await;
    lb::every_transport_and_broadcast(sticky.addr, &fleet.nodes).await;

    let round_robin = start_nginx("nginx-websocket-only", fleet.backends()).await;
    let mut clients = Vec::new();
    for i in 0..6 {
        clients.push(lb::echoing_client(round_robin.addr, i, "round-robin").await);
    }
    for client in clients {
        client.close().await;
    }
    drop(round_robin);
    drop(sticky);
}

#[test]
fn round_robin_nginx_without_stickiness_serves_every_transport_when_nodes_forward_sessions() {
    run_on_big_stack(round_robin_scenario);
}

async fn round_robin_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let fleet = Fleet::start_peered(&[]).await;
    let nginx = start_nginx("nginx-roundrobin", fleet.backends()).await;
    lb::every_transport_and_broadcast(nginx.addr, &fleet.nodes).await;
    lb::new_sessions_spread_over_every_node(nginx.addr, &fleet.nodes).await;
    assert!(
        lb::forwarded_connections(&fleet.nodes).await > 0,
        "round-robin sent no request to a node that does not own its session"
    );
    lb::sessions_of_other_nodes_through_one_master(&fleet.nodes).await;
    drop(nginx);
}

#[test]
fn a_node_killed_behind_round_robin_nginx_disturbs_only_its_own_clients() {
    run_on_big_stack(node_killed_scenario);
}

/// How many clients use the fleet when a node dies.
const CLIENTS: u64 = 300;

async fn node_killed_scenario() {
    use futures_util::future::join_all;
    use iocluster_testkit::{Signal, WsClient, send_signal, within};

    let _serial = one_cluster_at_a_time().await;
    let fleet = Fleet::start_peered(&[]).await;
    let nginx = start_nginx("nginx-roundrobin", fleet.backends()).await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        clients.push(lb::echoing_client(nginx.addr, i, "before").await);
    }
    let victim = &fleet.nodes[1];
    let victim_pids = victim.status().await.pids();
    let (on_victim, others): (Vec<WsClient>, Vec<WsClient>) = clients
        .into_iter()
        .partition(|c| victim_pids.contains(&c.worker));
    assert!(
        !on_victim.is_empty() && !others.is_empty(),
        "nginx spread the clients"
    );

    // Node 2's master dies, and its workers with it.
    send_signal(victim.pid, Signal::SIGKILL);

    // Its clients lose their connection, and reconnect through nginx to
    // the two nodes left, within a few seconds.
    let reconnected = within(
        std::time::Duration::from_secs(15),
        "node 2's clients to reconnect elsewhere",
        join_all(on_victim.into_iter().enumerate().map(|(i, mut client)| {
            let lb = nginx.addr;
            let victim_pids = &victim_pids;
            async move {
                while client.next_packet().await.is_ok() {}
                let again = lb::echoing_client(lb, 10_000 + i as u64, "after").await;
                assert!(
                    !victim_pids.contains(&again.worker),
                    "back on the dead node"
                );
                again
            }
        })),
    )
    .await;

    // Nobody else noticed: every other client echoes on its connection.
    let others = join_all(
        others
            .into_iter()
            .enumerate()
            .map(|(i, mut client)| async move {
                client
                    .echo(20_000 + i as u64, "still here")
                    .await
                    .unwrap_or_else(|e| panic!("a client of another node was disturbed: {e}"));
                client
            }),
    )
    .await;
    for client in reconnected.into_iter().chain(others) {
        client.close().await;
    }
    drop(nginx);
}
