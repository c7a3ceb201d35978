//! `--recovery`: connection state recovery in the built-in app, across a
//! worker's crash (the state lives in the master).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_testkit::{Master, Signal, WAIT, WsClient, one_cluster_at_a_time, send_signal};
use support::{broadcast, iocluster_bin, tick};

#[tokio::test]
async fn a_client_of_a_crashed_worker_recovers_every_broadcast_it_missed() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(
        iocluster_bin(),
        2,
        &["--recovery", "--balance", "round-robin"],
    )
    .await;
    let mut sender = WsClient::connect(master.addr).await.unwrap();
    let mut victim = WsClient::connect(master.addr).await.unwrap();
    assert_ne!(sender.worker, victim.worker, "round-robin over two workers");
    let pid = victim
        .recovery_pid
        .clone()
        .expect("recovery on: CONNECT carries a pid");
    let id = victim.id.clone();

    for n in 0..5 {
        broadcast(&mut sender, n).await;
    }
    let mut seen = Vec::new();
    while seen.len() < 5 {
        if let Some(n) = tick(&victim.next_packet().await.unwrap()) {
            seen.push(n);
        }
    }
    let offset = victim.offset.clone().expect("broadcasts carry offsets");

    // The victim's worker dies; broadcasts go on meanwhile.
    send_signal(victim.worker, Signal::SIGKILL);
    drop(victim);
    for n in 5..10 {
        broadcast(&mut sender, n).await;
    }

    // The client comes back, asking to recover: same socket, and the
    // broadcasts it missed, in order, before anything else.
    let mut back = WsClient::open(master.addr).await.unwrap();
    let auth = serde_json::json!({ "pid": pid, "offset": offset });
    back.connect_namespace(&format!("40{auth}")).await.unwrap();
    assert_eq!(back.id, id, "the same socket");
    assert_eq!(
        back.recovery_pid.as_deref(),
        Some(pid.as_str()),
        "the same pid"
    );
    let mut missed = Vec::new();
    while missed.len() < 5 {
        let packet = iocluster_testkit::within(WAIT, "the missed broadcasts", back.next_packet())
            .await
            .unwrap();
        if let Some(n) = tick(&packet) {
            missed.push(n);
        }
    }
    assert_eq!(missed, vec![5, 6, 7, 8, 9]);
    drop(master);
}

#[tokio::test]
async fn clients_recover_across_a_rolling_restart() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(iocluster_bin(), 2, &["--recovery"]).await;
    let old_pids = master.status().await.pids();
    let mut sender = WsClient::connect(master.addr).await.unwrap();
    let mut victim = WsClient::connect(master.addr).await.unwrap();
    let (id, pid) = (victim.id.clone(), victim.recovery_pid.clone().unwrap());
    for n in 0..3 {
        broadcast(&mut sender, n).await;
    }
    let mut seen = 0;
    while seen < 3 {
        seen += usize::from(tick(&victim.next_packet().await.unwrap()).is_some());
    }
    let offset = victim.offset.clone().unwrap();

    // SIGHUP: every worker replaced, one at a time; the victim's worker
    // drains and closes its connection (as a transport close: the client
    // reconnects, and its state was kept for it).
    master.signal(Signal::SIGHUP);
    master
        .wait_for_status("every worker replaced", WAIT, |status| {
            let workers = status.workers();
            workers.len() == 2
                && workers
                    .iter()
                    .all(|w| w.ready && !w.draining && !old_pids.contains(&w.pid))
        })
        .await;
    while victim.next_packet().await.is_ok() {}
    drop(sender);

    // Broadcasts while the victim is away, from a client of a new worker.
    let mut sender = WsClient::connect(master.addr).await.unwrap();
    for n in 3..8 {
        broadcast(&mut sender, n).await;
    }
    let mut back = WsClient::open(master.addr).await.unwrap();
    let auth = serde_json::json!({ "pid": pid, "offset": offset });
    back.connect_namespace(&format!("40{auth}")).await.unwrap();
    assert_eq!(back.id, id, "the same socket, on a new worker");
    let mut missed = Vec::new();
    while missed.len() < 5 {
        if let Some(n) = tick(&back.next_packet().await.unwrap()) {
            missed.push(n);
        }
    }
    assert_eq!(missed, vec![3, 4, 5, 6, 7]);
}
