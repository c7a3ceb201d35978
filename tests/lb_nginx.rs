//! A real nginx in front of three iocluster nodes synced by Redis, with the
//! committed configs `deploy/nginx/nginx.conf` (sticky by client address)
//! and `deploy/nginx-websocket-only/nginx.conf` (round-robin): every
//! transport works through it, and broadcasts reach every node.
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
