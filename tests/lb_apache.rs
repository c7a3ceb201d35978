//! A real Apache httpd in front of three iocluster nodes synced by Redis,
//! with the committed config `deploy/apache/httpd.conf`: polling clients
//! stick to their node by Apache's `SERVERID` route cookie (their WebSocket
//! upgrades too, through the separate `ws://` balancer), every transport
//! works through it, and broadcasts reach every node.
//!
//! Needs Debian's `apache2` (`apt-get install apache2`; scripts/test.sh
//! installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::net::SocketAddr;
use std::path::Path;

use iocluster_testkit::{PollingSession, free_port, one_cluster_at_a_time, run_on_big_stack};
use support::lb::{self, Balancer, Fleet};

/// Where Debian's package puts httpd.
const APACHE: &str = "/usr/sbin/apache2";

/// The config, under deploy/.
const CONFIG: &str = "apache/httpd.conf";

/// Renders the committed config for `backends` (the documented
/// substitution: `Listen 8080`, `127.0.0.1:3001..3003` and the run
/// directory), starts httpd in the foreground on it and returns once it
/// routes `/health` to a node.
async fn start_apache(backends: [SocketAddr; 3]) -> Balancer {
    let binary = if Path::new(APACHE).exists() {
        APACHE
    } else {
        "httpd"
    };
    let port = free_port();
    let dir = lb::scratch_dir("apache", port);
    let mut text = lb::substitute_backends(&lb::deploy_file(CONFIG), backends, CONFIG);
    text = lb::substitute(
        &text,
        "\nListen 8080\n",
        &format!("\nListen 127.0.0.1:{port}\n"),
        CONFIG,
    );
    text = lb::substitute(
        &text,
        "/run/iocluster-apache",
        &dir.display().to_string(),
        CONFIG,
    );
    let conf = dir.join("httpd.conf");
    std::fs::write(&conf, text).expect("write the rendered config");
    let mut command = std::process::Command::new(binary);
    // -DFOREGROUND: the PID we hold is the parent that stops its children
    // on SIGTERM.
    command.arg("-f").arg(&conf).arg("-DFOREGROUND");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let apache = Balancer::start("apache", command, addr, dir).await;
    apache.wait_until_routed("/health").await;
    apache
}

#[test]
fn apache_in_front_of_three_redis_nodes_serves_every_transport_and_broadcasts() {
    run_on_big_stack(apache_scenario);
}

async fn apache_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let fleet = Fleet::start(&[]).await;
    let apache = start_apache(fleet.backends()).await;

    // The route cookie Apache hands out names a node.
    let session = PollingSession::open(apache.addr)
        .await
        .expect("a polling handshake through Apache");
    let route = session.cookies.get("SERVERID").expect("a SERVERID cookie");
    assert!(
        ["sticky.node1", "sticky.node2", "sticky.node3"].contains(&route.as_str()),
        "the SERVERID cookie through Apache is {route:?}"
    );
    session.post(&["1"]).await.expect("close the session");

    lb::new_sessions_spread_over_every_node(apache.addr, &fleet.nodes).await;
    lb::every_transport_and_broadcast(apache.addr, &fleet.nodes).await;
    drop(apache);
}
