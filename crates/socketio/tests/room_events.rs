//! What an adapter sees of its namespace's rooms through
//! `LocalNamespace::on_room_event` (the sharded Redis adapter subscribes
//! per room with it): creations and deletions of this namespace only —
//! never those of a sibling child of the same dynamic namespace — with
//! `has_room` and `has_socket` telling the state after the change.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // test code: a panic is a failed assertion

mod support;

use std::sync::{Arc, Mutex};

use iocluster_socketio::adapter::{Adapter, AdapterFactory, InMemoryAdapter, LocalNamespace};
use iocluster_socketio::{RoomEvent, Server, ServerConfig};
use support::{WAIT, WsClient, eventually};
use tokio::net::TcpListener;

/// An event as the adapter saw it: namespace, event, and the namespace's
/// state right after (`has_room(room)`, `has_socket(room)`).
type Seen = (String, RoomEvent, bool, bool);

/// The in-memory adapter, plus a record of every room event it sees.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Seen>>>);

impl AdapterFactory for Recording {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        let seen = Arc::clone(&self.0);
        let local = namespace.clone();
        namespace.on_room_event(move |event| {
            let room = match event {
                RoomEvent::Create(room) | RoomEvent::Delete(room) => room,
                RoomEvent::Join { room, .. } | RoomEvent::Leave { room, .. } => room,
            };
            let state = (local.has_room(room), local.has_socket(room));
            seen.lock()
                .unwrap()
                .push((local.name(), event.clone(), state.0, state.1));
        });
        Arc::new(InMemoryAdapter::new(namespace))
    }
}

impl Recording {
    fn of(&self, nsp: &str) -> Vec<(RoomEvent, bool, bool)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, ..)| name == nsp)
            .map(|(_, event, room, socket)| (event.clone(), *room, *socket))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_see_their_own_namespaces_rooms_created_and_deleted() {
    let recording = Recording::default();
    let io = Server::with_adapter(ServerConfig::default(), recording.clone());
    io.on_connection(|socket| socket.join(["chat"]));
    io.of_dynamic(|name, _| name.starts_with("/dyn-"))
        .on_connection(|socket| socket.join(["chat"]));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(iocluster_socketio::engineio::serve(listener, io.router()));

    let mut client = WsClient::open(addr)
        .await
        .expect("a WebSocket session opens");
    let sid = client.join("/").await;
    let dyn_sid = client.join("/dyn-1").await;
    let other_sid = client.join("/dyn-2").await;
    let chat = || "chat".to_owned();
    let join = |room: String, sid: &str| RoomEvent::Join {
        room,
        sid: sid.to_owned(),
    };
    eventually(WAIT, "the joins to be seen", || {
        recording.of("/").len() == 4
    })
    .await;
    // The socket's own room, then chat: each created, then joined; the
    // socket is known when its own room is created.
    assert_eq!(
        recording.of("/"),
        [
            (RoomEvent::Create(sid.clone()), true, true),
            (join(sid.clone(), &sid), true, true),
            (RoomEvent::Create(chat()), true, false),
            (join(chat(), &sid), true, false),
        ]
    );
    eventually(WAIT, "the dynamic children's joins", || {
        recording.of("/dyn-1").len() == 4 && recording.of("/dyn-2").len() == 4
    })
    .await;
    // Each child's adapter sees its own sockets only, though the children
    // share their handlers.
    for (nsp, id) in [("/dyn-1", &dyn_sid), ("/dyn-2", &other_sid)] {
        assert!(
            recording
                .of(nsp)
                .iter()
                .all(|(event, ..)| !matches!(event, RoomEvent::Join { sid, .. } if sid != id)),
            "{nsp}: {:?}",
            recording.of(nsp)
        );
    }

    drop(client);
    eventually(WAIT, "the deletions to be seen", || {
        recording.of("/").len() == 8
    })
    .await;
    let after: Vec<(RoomEvent, bool, bool)> = recording.of("/")[4..].to_vec();
    assert!(
        after.contains(&(RoomEvent::Delete(chat()), false, false)),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|(event, room, _)| *event == RoomEvent::Delete(sid.clone()) && !room),
        "{after:?}"
    );
}
