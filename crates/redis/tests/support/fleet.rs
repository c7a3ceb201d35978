//! The fleet of the `ClusterAdapter` interop tests (sharded and streams):
//! our servers `a` and `b` and a Node server on one Redis, two clients on
//! each, and the request/ack checks both adapters must pass the same way.

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use iocluster_socketio::Payload;
use iocluster_testkit::{NodePeer, WAIT, within};
use serde_json::{Value, json};

use crate::support::{RustServer, sorted_first_args};

/// Every client, named by its server: `n` the Node server's, `a` and `b`
/// ours.
const CLIENTS: [&str; 6] = ["n1", "n2", "a1", "a2", "b1", "b2"];
/// The clients in room `chat`: one per server.
const IN_CHAT: [&str; 3] = ["n1", "a1", "b1"];

/// Our servers `a` and `b`, the Node peer; clients `n1`, `n2` on the Node
/// server, `a1`, `a2` on `a`, `b1`, `b2` on `b`; `n1`, `a1`, `b1` in room
/// `chat`.
pub struct Fleet {
    /// What the Redis side keeps running (a server, a cluster).
    pub redis: Box<dyn Any + Send>,
    pub a: RustServer,
    pub b: RustServer,
    pub peer: NodePeer,
    /// Socket ids by client name.
    pub ids: BTreeMap<&'static str, String>,
}

impl Fleet {
    /// Connects the clients and puts them in their rooms, then waits until
    /// every server counts the three.
    pub async fn gather(
        redis: Box<dyn Any + Send>,
        a: RustServer,
        b: RustServer,
        mut peer: NodePeer,
    ) -> Fleet {
        let mut ids = BTreeMap::new();
        for name in CLIENTS {
            let url = match &name[..1] {
                "n" => peer.url(),
                "a" => a.url(),
                _ => b.url(),
            };
            ids.insert(name, peer.connect(name, &url).await);
        }
        for name in IN_CHAT {
            peer.join(name, "chat").await;
        }
        let mut fleet = Fleet {
            redis,
            a,
            b,
            peer,
            ids,
        };
        fleet.wait_for_servers(3).await;
        fleet
    }

    /// Waits until every server counts `n` servers.
    pub async fn wait_for_servers(&mut self, n: usize) {
        within(WAIT, "every server to count the others", async {
            loop {
                let a = self.a.io.of("/").server_count().await;
                let b = self.b.io.of("/").server_count().await;
                let node = self.peer.ok(json!({"cmd": "serverCount"})).await;
                if a == n && b == n && node == json!(n) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// How many times client `name` received event `ev`.
    pub fn count(&self, name: &str, ev: &str) -> usize {
        self.peer.received(name).iter().filter(|e| *e == ev).count()
    }

    /// From each origin (`a`, `b`, the Node server): a broadcast to all
    /// (`all-{origin}`), to `chat` (`chat-`, with binary), to all but `chat`
    /// (`except-`), to one socket of another server (`direct-`), then
    /// markers to all (`mark-`) and to `chat` (`chatmark-`).
    pub async fn broadcast_from_every_origin(&mut self) {
        for (origin, io) in [("a", &self.a.io), ("b", &self.b.io)] {
            let direct = if origin == "a" { "n2" } else { "a2" };
            let all = Payload::new(vec![json!(1), json!({"x": "y"})]);
            io.emit(&format!("all-{origin}"), all);
            let chat = Payload::new(vec![json!("hi")]).with_binary(Bytes::from_static(&[1, 2]));
            io.to("chat").emit(&format!("chat-{origin}"), chat);
            let except = io.broadcast().except("chat");
            except.emit(&format!("except-{origin}"), ());
            let direct = io.to(self.ids[direct].clone());
            direct.emit(&format!("direct-{origin}"), ());
            io.emit(&format!("mark-{origin}"), ());
            io.to("chat").emit(&format!("chatmark-{origin}"), ());
        }
        let emit = |rooms: Value, except: Value, ev: &str| json!({"cmd": "emit", "rooms": rooms, "except": except, "ev": ev, "args": [{"$bin": "0102"}]});
        let b2 = self.ids["b2"].clone();
        for command in [
            emit(json!([]), json!([]), "all-n"),
            emit(json!(["chat"]), json!([]), "chat-n"),
            emit(json!([]), json!(["chat"]), "except-n"),
            emit(json!([b2]), json!([]), "direct-n"),
            emit(json!([]), json!([]), "mark-n"),
            emit(json!(["chat"]), json!([]), "chatmark-n"),
        ] {
            self.peer.ok(command).await;
        }
    }

    /// Waits until every client has each origin's markers it is sent.
    pub async fn wait_for_markers(&mut self) {
        for origin in ["a", "b", "n"] {
            for name in CLIENTS {
                self.peer
                    .client_event(name, &format!("mark-{origin}"))
                    .await;
            }
            for name in IN_CHAT {
                let marker = format!("chatmark-{origin}");
                self.peer.client_event(name, &marker).await;
            }
        }
    }

    /// Each client got each broadcast of
    /// [`broadcast_from_every_origin`](Self::broadcast_from_every_origin)
    /// once if it was targeted, else never.
    pub fn assert_each_broadcast_reached_exactly_its_targets(&self, context: &str) {
        for origin in ["a", "b", "n"] {
            for name in CLIENTS {
                let in_chat = IN_CHAT.contains(&name);
                let direct = matches!((origin, name), ("a", "n2") | ("b", "a2") | ("n", "b2"));
                let expected = [
                    ("all", 1),
                    ("mark", 1),
                    ("chat", usize::from(in_chat)),
                    ("chatmark", usize::from(in_chat)),
                    ("except", usize::from(!in_chat)),
                    ("direct", usize::from(direct)),
                ];
                for (kind, times) in expected {
                    let ev = format!("{kind}-{origin}");
                    let got = self.count(name, &ev);
                    assert_eq!(got, times, "{name} got {ev} {got} times ({context})");
                }
            }
        }
    }

    /// The sorted socket ids of `names`.
    fn sorted_ids(&self, names: &[&str]) -> Vec<String> {
        let mut ids: Vec<String> = names.iter().map(|n| self.ids[n].clone()).collect();
        ids.sort();
        ids
    }

    /// `fetch_sockets` both ways: ours lists the Node server's sockets with
    /// their data and rooms, Node's lists ours with their data and
    /// handshake.
    pub async fn fetch_sockets_both_ways(&mut self) {
        let sockets = self.a.io.of("/").to("chat").fetch_sockets().await;
        let sockets = sockets.expect("fetch_sockets");
        let mut found: Vec<(String, String)> = sockets
            .iter()
            .map(|s| (s.id().to_owned(), s.data()["server"].to_string()))
            .collect();
        found.sort();
        let mut expected: Vec<(String, String)> = [("n1", "node"), ("a1", "rust"), ("b1", "rust")]
            .iter()
            .map(|(name, server)| (self.ids[name].clone(), format!("\"{server}\"")))
            .collect();
        expected.sort();
        assert_eq!(found, expected);
        let node_socket = sockets.iter().find(|s| s.data()["server"] == "node");
        let node_socket = node_socket.expect("the Node server's socket");
        assert!(node_socket.rooms().contains(&"chat".to_owned()));

        let command = json!({"cmd": "fetchSockets", "rooms": [], "except": ["chat"]});
        let theirs = self.peer.ok(command).await;
        let theirs = theirs.as_array().expect("an array of sockets");
        let mut ids: Vec<String> = theirs
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        assert_eq!(ids, self.sorted_ids(&["n2", "a2", "b2"]));
        let ours = theirs.iter().find(|s| s["id"] == self.ids["a2"].as_str());
        let ours = ours.expect("our socket a2");
        assert_eq!(ours["data"], json!({"server": "rust"}));
        let url = ours["handshake"]["url"].as_str();
        assert!(
            url.is_some_and(|url| url.starts_with("/socket.io/")),
            "{ours}"
        );
    }

    /// Server-side emits, with and without acks (and binary), both ways.
    pub async fn server_side_emits_both_ways(&mut self) {
        let replies = self
            .a
            .io
            .of("/")
            .server_side_emit_with_ack("ping-server", json!("from-a"), Duration::from_secs(3))
            .await
            .expect("every server replies");
        let replies = sorted_first_args(&replies);
        assert_eq!(replies, [json!("node-pong"), json!("rust-pong")]);
        let handled = |e: &Value| e["event"] == "server-event";
        let event = self.peer.event("Node's server-side handler", handled).await;
        assert_eq!(event["args"], json!(["from-a"]));
        let on_b = self.b.server_event("ping-server").await;
        assert_eq!(on_b.payload.args, [json!("from-a")]);

        let command = json!({"cmd": "serverSideEmit", "ev": "ping-server", "args": ["from-node"], "ack": true});
        let replies = self.peer.ok(command).await;
        assert_eq!(replies, json!(["rust-pong", "rust-pong"]));
        let command = json!({"cmd": "serverSideEmit", "ev": "hello", "args": [{"$bin": "ff"}]});
        self.peer.ok(command).await;
        let hello = self.a.server_event("hello").await;
        assert_eq!(hello.payload.attachments, [Bytes::from_static(&[0xff])]);
    }

    /// Broadcasts with acks from either side return every client's reply.
    pub async fn broadcasts_with_acks_both_ways(&mut self) {
        let replies = self
            .a
            .io
            .of("/")
            .to("chat")
            .timeout(Duration::from_secs(3))
            .emit_with_ack("ask", "question")
            .await;
        assert!(replies.complete, "{replies:?}");
        let answers = sorted_first_args(&replies.replies);
        assert_eq!(answers, [json!("a1-ack"), json!("b1-ack"), json!("n1-ack")]);

        let command =
            json!({"cmd": "emitWithAck", "rooms": [], "except": [], "ev": "ask", "args": [1]});
        let answers = self.peer.ok(command).await;
        let mut answers: Vec<String> = answers
            .as_array()
            .expect("replies")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        answers.sort();
        let all = ["a1-ack", "a2-ack", "b1-ack", "b2-ack", "n1-ack", "n2-ack"];
        assert_eq!(answers, all);
    }

    /// Waits until clients `names` were disconnected.
    pub async fn disconnected(&mut self, names: &[&str]) {
        for name in names {
            let what = format!("{name} to be disconnected");
            let gone = |e: &Value| e["event"] == "client-disconnect" && e["name"] == *name;
            self.peer.event(&what, gone).await;
        }
    }
}
