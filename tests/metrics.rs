//! `GET /metrics` on the admin endpoint: the whole node in one scrape, in a
//! format a real Prometheus parser reads (Python's `prometheus_client`),
//! and counters that move with what happens: sessions, broadcasts, a
//! refused head, a killed worker.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use iocluster_testkit::{Master, Signal, WAIT, WsClient, http, one_cluster_at_a_time, send_signal};
use serde_json::Value;
use support::iocluster_bin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One parsed sample.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Scrapes `/metrics` and parses it with `tests/tools/parse_metrics.py`.
async fn scrape(master: &Master) -> Vec<Sample> {
    let response = http(master.admin, "GET", "/metrics", b"").await.unwrap();
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        response.header("content-type")
    );
    let mut parser = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/parse_metrics.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs prometheus-client)");
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(&response.body)
        .unwrap();
    let output = parser.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the scrape does not parse: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&response.body)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let sample: Value = serde_json::from_str(line).unwrap();
            Sample {
                name: sample["name"].as_str().unwrap().to_owned(),
                labels: serde_json::from_value(sample["labels"].clone()).unwrap(),
                value: sample["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The sum of the samples named `name` whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Sends a head larger than `--max-head`: the master answers 431.
async fn oversized_head(master: &Master) {
    let mut stream = tokio::net::TcpStream::connect(master.addr).await.unwrap();
    let mut head = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 20_000));
    head.extend_from_slice(b"\r\n\r\n");
    let _ = stream.write_all(&head).await;
    let mut answer = Vec::new();
    let _ = iocluster_testkit::within(WAIT, "the 431", stream.read_to_end(&mut answer)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn one_scrape_shows_the_node_and_its_counters_move() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(iocluster_bin(), 2, &["--balance", "round-robin"]).await;
    let before = scrape(&master).await;
    assert_eq!(sum(&before, "iocluster_workers_ready", &[]), 2.0);

    // Ten sessions over two workers, five broadcasts to all of them.
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(WsClient::connect(master.addr).await.unwrap());
    }
    for n in 0..5 {
        let sender = &mut clients[0];
        sender
            .send(&format!("42{n}[\"broadcast\",{n}]"))
            .await
            .unwrap();
        while sender.next_packet().await.unwrap() != format!("43{n}[]") {}
    }
    oversized_head(&master).await;

    let after = scrape(&master).await;
    let grew =
        |name: &str, with: &[(&str, &str)]| sum(&after, name, with) - sum(&before, name, with);
    assert_eq!(
        sum(&after, "iocluster_sessions", &[("transport", "websocket")]),
        10.0
    );
    for slot in ["0", "1"] {
        assert_eq!(
            sum(
                &after,
                "iocluster_sessions",
                &[("worker", slot), ("transport", "websocket")]
            ),
            5.0,
            "round-robin: five sessions on worker {slot}"
        );
    }
    assert_eq!(
        sum(&after, "iocluster_sockets", &[("namespace", "/")]),
        10.0
    );
    assert_eq!(grew("iocluster_sessions_opened_total", &[]), 10.0);
    assert_eq!(grew("iocluster_broadcasts_total", &[]), 5.0);
    assert_eq!(
        grew("iocluster_broadcast_deliveries_total", &[]),
        50.0,
        "5 broadcasts x 10 clients"
    );
    assert!(grew("iocluster_messages_sent_total", &[]) >= 50.0);
    assert!(
        grew("iocluster_messages_received_total", &[]) >= 15.0,
        "10 CONNECTs, 5 broadcasts"
    );
    assert_eq!(
        grew("iocluster_head_errors_total", &[("status", "431")]),
        1.0
    );
    assert!(grew("iocluster_handoffs_total", &[]) >= 10.0);
    assert!(grew("iocluster_connections_accepted_total", &[]) >= 11.0);
    assert!(
        sum(
            &after,
            "iocluster_process_resident_memory_bytes",
            &[("worker", "master")]
        ) > 0.0
    );
    assert!(sum(&after, "iocluster_process_open_fds", &[("worker", "0")]) > 0.0);

    // A worker killed: an exit by signal, a restart of its slot.
    let victim = master.status().await.workers()[1].pid;
    send_signal(victim, Signal::SIGKILL);
    master
        .wait_for_status("the slot to be ready again", WAIT, |status| {
            let workers = status.workers();
            workers.len() == 2 && workers.iter().all(|w| w.ready && w.pid != victim)
        })
        .await;
    let killed = scrape(&master).await;
    assert_eq!(
        sum(
            &killed,
            "iocluster_worker_exits_total",
            &[("cause", "signal")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &killed,
            "iocluster_worker_restarts_total",
            &[("worker", "1")]
        ),
        1.0
    );
    assert_eq!(sum(&killed, "iocluster_workers_ready", &[]), 2.0);
    drop(clients);
}
