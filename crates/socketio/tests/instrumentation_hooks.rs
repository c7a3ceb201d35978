//! The hooks instrumentation (the Admin UI) is built on: every namespace
//! seen once by `Server::on_new_namespace`, those there before and those
//! created later (children of a dynamic namespace included); every socket of
//! every namespace seen by `Server::on_any_connection` before the
//! namespace's own handlers, once each even for the children of a dynamic
//! namespace (whose handlers are shared); a socket's own emits seen by
//! `Socket::on_any_outgoing`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::sync::{Arc, Mutex};

use iocluster_socketio::{Server, ServerConfig};
use support::{WAIT, WsClient, eventually};
use tokio::net::TcpListener;

type Log = Arc<Mutex<Vec<String>>>;

fn log(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_see_every_namespace_once_every_socket_first_and_its_own_emits() {
    let io = Server::new(ServerConfig::default());
    io.of("/before");
    let seen: Log = Arc::default();

    let namespaces = Arc::clone(&seen);
    io.on_new_namespace(move |ns| log(&namespaces, format!("namespace {}", ns.name())));
    let connections = Arc::clone(&seen);
    io.on_any_connection(move |socket| {
        log(
            &connections,
            format!("observed {}", socket.namespace().name()),
        );
        let outgoing = Arc::clone(&connections);
        socket.on_any_outgoing(move |socket, event, args| {
            log(
                &outgoing,
                format!(
                    "sent {} {event} {}",
                    socket.namespace().name(),
                    args.args.len()
                ),
            );
        });
    });
    let handled = Arc::clone(&seen);
    io.on_connection(move |socket| {
        log(&handled, "handler /".to_owned());
        let _ = socket.emit("hello", vec![1.into(), 2.into()]);
    });
    let handled = Arc::clone(&seen);
    io.of_dynamic(|name, _| name.starts_with("/dyn-"))
        .on_connection(move |socket| {
            log(&handled, format!("handler {}", socket.namespace().name()))
        });
    io.of("/after");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(iocluster_socketio::engineio::serve(listener, io.router()));
    let mut client = WsClient::open(addr)
        .await
        .expect("a WebSocket session opens");
    client.join("/").await;
    client.join("/dyn-1").await;
    client.join("/dyn-2").await;

    let expected = [
        "observed /",
        "handler /",
        "sent / hello 2",
        "namespace /dyn-1",
        "observed /dyn-1",
        "handler /dyn-1",
        "namespace /dyn-2",
        "observed /dyn-2",
        "handler /dyn-2",
    ];
    eventually(WAIT, "every hook to run", || {
        seen.lock().unwrap().len() >= 3 + expected.len()
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    // The namespaces there before the hook, in any order, then the rest in order.
    let mut before: Vec<&str> = seen[..2].iter().map(String::as_str).collect();
    before.sort_unstable();
    assert_eq!(before, ["namespace /", "namespace /before"]);
    assert_eq!(seen[2], "namespace /after");
    assert_eq!(&seen[3..], expected);
}
