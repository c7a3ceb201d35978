//! `--log-format json`: every line a JSON object, with one line per worker
//! start, exit and restart and per refused request head.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use iocluster_testkit::{Master, Signal, WAIT, eventually, one_cluster_at_a_time, send_signal};
use serde_json::Value;
use support::iocluster_bin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The JSON log lines' messages (the master's and its workers' stderr).
fn messages(master: &Master) -> Vec<String> {
    master
        .logs()
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| {
            let event: Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not a JSON log line ({error}): {line}"));
            event["fields"]["message"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn json_logs_say_what_the_supervisor_and_the_router_did() {
    let _turn = one_cluster_at_a_time().await;
    let master = Master::start(iocluster_bin(), 1, &["--log-format", "json"]).await;
    assert!(messages(&master).iter().any(|m| m == "worker started"));

    let mut stream = tokio::net::TcpStream::connect(master.addr).await.unwrap();
    stream
        .write_all(b"\x00\x01 not http\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 400"));

    let worker = master.status().await.pids()[0];
    send_signal(worker, Signal::SIGKILL);
    eventually(
        WAIT,
        "the exit, the restart and the refused head in the logs",
        || {
            let messages = messages(&master);
            [
                "worker exited",
                "restarting worker",
                "malformed request head: 400",
            ]
            .iter()
            .all(|wanted| messages.iter().any(|m| m == wanted))
        },
    )
    .await;
}
