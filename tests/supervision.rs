//! Supervision as DESIGN.md describes it: exponential restart backoff that
//! resets once a worker has stayed up `--backoff-reset`, restarts in
//! `/status` counted in a row (as the backoff counts them) and in all, and
//! an admin endpoint that cannot bind stops the master at startup.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::process::Stdio;

use iocluster_testkit::{Master, Signal, Status, WAIT, one_cluster_at_a_time, send_signal};
use serde_json::Value;
use support::iocluster_bin;

/// The uptime after which the test's workers reset their backoff: long
/// enough that a worker killed as soon as it is ready never reaches it, even
/// on a busy machine.
const BACKOFF_RESET: &str = "5s";

/// `restarts` and `restarts_total` of slot 0.
fn restarts(status: &Status) -> (u64, u64) {
    let slot = &status.0["workers"][0];
    let count = |key: &str| slot[key].as_u64().unwrap_or(u64::MAX);
    (count("restarts"), count("restarts_total"))
}

/// Kills the worker of slot 0 and waits for its successor to be ready.
async fn kill_and_wait_for_successor(master: &Master) -> Status {
    let old = master.status().await.pids()[0];
    send_signal(old, Signal::SIGKILL);
    master
        .wait_for_status("a new worker in slot 0", WAIT, |status| {
            let workers = status.workers();
            workers.len() == 1 && workers[0].pid != old && workers[0].ready
        })
        .await
}

/// Runs `iocluster --port 0 --workers 1 ARGS`, which must exit at once
/// with a failure; its output.
async fn failed_start(args: &[&str]) -> std::process::Output {
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(iocluster_bin())
            .args(["--port", "0", "--workers", "1"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the master exits at once")
    .unwrap();
    assert!(!output.status.success(), "the master ran with {args:?}");
    output
}

#[tokio::test]
async fn a_worker_that_stays_up_resets_its_restart_backoff() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(iocluster_bin(), 1, &["--backoff-reset", BACKOFF_RESET]).await;
    assert_eq!(restarts(&master.status().await), (0, 0));

    // Two quick exits: restarts in a row, as the backoff counts them.
    let status = kill_and_wait_for_successor(&master).await;
    assert_eq!(restarts(&status), (1, 1), "{}", status.0);
    let status = kill_and_wait_for_successor(&master).await;
    assert_eq!(restarts(&status), (2, 2), "{}", status.0);

    // Once the worker has stayed up long enough, the slot reads healthy
    // again; the total remembers.
    master
        .wait_for_status("restarts in a row to reset", WAIT, |status| {
            restarts(status) == (0, 2)
        })
        .await;

    // The next exit starts a new series: the first restart in a row (the
    // shortest delay), not the third.
    let status = kill_and_wait_for_successor(&master).await;
    assert_eq!(restarts(&status), (1, 3), "{}", status.0);
}

#[tokio::test]
async fn an_admin_address_in_use_stops_the_master_at_startup() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let output = failed_start(&["--admin", &admin]).await;
    assert!(
        !output.status.success(),
        "the master ran without its admin endpoint"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("admin endpoint") && stderr.contains(&admin),
        "stderr: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("listening"), "stdout: {stdout}");
    drop(taken);
}

#[tokio::test]
async fn status_shows_every_restart_counter_as_json_numbers() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(iocluster_bin(), 1, &[]).await;
    let status = master.status().await;
    let worker = &status.0["workers"][0];
    for key in [
        "restarts",
        "restarts_total",
        "control_queued_bytes",
        "control_frames_dropped",
    ] {
        assert!(matches!(worker[key], Value::Number(_)), "{key} in {worker}");
    }
}

#[tokio::test]
async fn an_admin_address_off_loopback_needs_admin_public() {
    let output = failed_start(&["--admin", "0.0.0.0:0"]).await;
    assert!(
        !output.status.success(),
        "the master ran with a public admin endpoint"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-public"), "stderr: {stderr}");
}
