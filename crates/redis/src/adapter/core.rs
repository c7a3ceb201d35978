//! One namespace's adapter state, and what it does with the messages of
//! other servers.

use std::collections::BTreeSet;

use bytes::Bytes;
use iocluster_socketio::adapter::{BroadcastOptions, LocalNamespace};
use iocluster_socketio::{Payload, ServerAck};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use super::RedisAdapterConfig;
use super::pending::{Pending, request_timeout};
use super::publisher::Publisher;
use crate::channels::Channels;
use crate::uid::uid;
use crate::wire::{self, PlainResponse, RequestType, TypedResponse};

/// A namespace's adapter: its uid, channels, requests in flight, and the
/// local namespace it acts on.
pub(crate) struct AdapterCore {
    pub(crate) nsp: String,
    pub(crate) uid: String,
    pub(crate) channels: Channels,
    pub(crate) specific_response: String,
    pub(crate) local: LocalNamespace,
    pub(crate) publisher: Publisher,
    pub(crate) config: RedisAdapterConfig,
    pub(crate) pending: Pending,
    pub(crate) subscribed: watch::Sender<bool>,
}

/// A request from another server, as read (JSON or msgpack).
struct Incoming {
    value: Value,
    attachments: Vec<Bytes>,
}

impl Incoming {
    fn str(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }

    fn opts(&self) -> Option<BroadcastOptions> {
        self.value.get("opts").map(|opts| wire::opts_of(Some(opts)))
    }

    fn rooms(&self) -> Vec<String> {
        self.value
            .get("rooms")
            .and_then(Value::as_array)
            .map(|rooms| rooms.iter().filter_map(wire::room_name).collect())
            .unwrap_or_default()
    }
}

impl AdapterCore {
    pub(crate) fn new(
        local: LocalNamespace,
        publisher: Publisher,
        config: RedisAdapterConfig,
    ) -> AdapterCore {
        let nsp = local.name();
        let uid = uid(6);
        let channels = Channels::new(&config.key, &nsp);
        AdapterCore {
            specific_response: channels.specific_response(&uid),
            nsp,
            uid,
            channels,
            local,
            publisher,
            config,
            pending: Pending::default(),
            subscribed: watch::Sender::new(false),
        }
    }

    pub(crate) fn nsp(&self) -> &str {
        &self.nsp
    }

    /// The channels and pattern this namespace listens on.
    pub(crate) fn subscriptions(&self) -> (String, Vec<String>) {
        (
            format!("{}*", self.channels.broadcast),
            vec![
                self.channels.request.clone(),
                self.channels.response.clone(),
                self.specific_response.clone(),
            ],
        )
    }

    /// A pub/sub message on any channel of this process.
    pub(crate) fn on_message(&self, channel: &str, bytes: &Bytes) {
        if channel.starts_with(&self.channels.broadcast) {
            self.on_broadcast(bytes);
        } else if channel.starts_with(&self.channels.response) {
            self.on_response(bytes);
        } else if channel.starts_with(&self.channels.request) {
            self.on_request(bytes);
        }
    }

    fn on_broadcast(&self, bytes: &Bytes) {
        let broadcast = match wire::decode_broadcast(bytes) {
            Ok(broadcast) => broadcast,
            Err(error) => {
                tracing::debug!(%error, "ignoring malformed broadcast");
                return;
            }
        };
        if broadcast.uid == self.uid || broadcast.packet.nsp != self.nsp {
            return;
        }
        self.local
            .broadcast_packet(&broadcast.packet, &broadcast.opts);
    }

    fn on_response(&self, bytes: &Bytes) {
        let Ok((value, attachments)) = wire::decode_message(bytes) else {
            tracing::debug!("ignoring malformed response");
            return;
        };
        if let Some(id) = value.get("requestId").and_then(Value::as_str) {
            let id = id.to_owned();
            self.pending.deliver(&id, (value, attachments));
        }
    }

    /// Publishes a response where the requester listens.
    fn respond(&self, request: &Incoming, response: impl Into<Bytes>) {
        let channel = match request.str("uid") {
            Some(uid) if self.config.publish_on_specific_response_channel => {
                self.channels.specific_response(uid)
            }
            _ => self.channels.response.clone(),
        };
        self.publisher.publish(channel, response);
    }

    fn respond_json(&self, request: &Incoming, response: &impl Serialize) {
        match serde_json::to_string(response) {
            Ok(json) => self.respond(request, json),
            Err(error) => tracing::warn!(%error, "response not serializable"),
        }
    }

    /// Whether a request came from this very adapter.
    fn is_own(&self, request: &Incoming) -> bool {
        request.str("uid") == Some(self.uid.as_str())
            || request
                .str("requestId")
                .is_some_and(|id| self.pending.contains(id))
    }

    fn on_request(&self, bytes: &Bytes) {
        let Ok((value, attachments)) = wire::decode_message(bytes) else {
            tracing::debug!("ignoring malformed request");
            return;
        };
        let request = Incoming { value, attachments };
        let Some(kind) = request.value.get("type").and_then(RequestType::from_value) else {
            return;
        };
        // Requests of ours were applied here when they were made.
        if self.is_own(&request) {
            return;
        }
        match kind {
            RequestType::Sockets => self.answer_sockets(&request),
            RequestType::AllRooms => self.answer_all_rooms(&request),
            RequestType::RemoteJoin | RequestType::RemoteLeave | RequestType::RemoteDisconnect => {
                self.apply_remote(kind, &request)
            }
            RequestType::RemoteFetch => self.answer_fetch(&request),
            RequestType::ServerSideEmit => self.on_server_side_emit(request),
            RequestType::Broadcast => self.on_broadcast_with_ack(request),
            RequestType::BroadcastClientCount | RequestType::BroadcastAck => {}
        }
    }

    fn answer_sockets(&self, request: &Incoming) {
        let Some(id) = request.str("requestId") else {
            return;
        };
        let opts = BroadcastOptions {
            rooms: request.rooms(),
            ..BroadcastOptions::default()
        };
        let sockets: Vec<String> = self
            .local
            .fetch_sockets(&opts)
            .into_iter()
            .map(|s| s.id)
            .collect();
        #[derive(Serialize)]
        struct Body {
            sockets: Vec<String>,
        }
        self.respond_json(
            request,
            &PlainResponse {
                request_id: id,
                body: Body { sockets },
            },
        );
    }

    fn answer_all_rooms(&self, request: &Incoming) {
        let Some(id) = request.str("requestId") else {
            return;
        };
        let rooms: BTreeSet<String> = self
            .local
            .fetch_sockets(&BroadcastOptions::default())
            .into_iter()
            .flat_map(|s| s.rooms)
            .collect();
        #[derive(Serialize)]
        struct Body {
            rooms: BTreeSet<String>,
        }
        self.respond_json(
            request,
            &PlainResponse {
                request_id: id,
                body: Body { rooms },
            },
        );
    }

    /// `REMOTE_JOIN`/`LEAVE`/`DISCONNECT`: with options (the current API),
    /// or for one socket id (the old one, answered).
    fn apply_remote(&self, kind: RequestType, request: &Incoming) {
        let (opts, rooms, answer) = match request.opts() {
            Some(opts) => (opts, request.rooms(), false),
            None => {
                let Some(sid) = request.str("sid") else {
                    return;
                };
                let opts = BroadcastOptions {
                    rooms: vec![sid.to_owned()],
                    ..BroadcastOptions::default()
                };
                if self.local.fetch_sockets(&opts).is_empty() {
                    return;
                }
                let room = request.value.get("room").and_then(wire::room_name);
                (opts, room.into_iter().collect(), true)
            }
        };
        match kind {
            RequestType::RemoteJoin => self.local.add_sockets(&opts, &rooms),
            RequestType::RemoteLeave => self.local.del_sockets(&opts, &rooms),
            _ => {
                let close = request
                    .value
                    .get("close")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                self.local.disconnect_sockets(&opts, close);
            }
        }
        if let (true, Some(id)) = (answer, request.str("requestId")) {
            #[derive(Serialize)]
            struct Body {}
            self.respond_json(
                request,
                &PlainResponse {
                    request_id: id,
                    body: Body {},
                },
            );
        }
    }

    fn answer_fetch(&self, request: &Incoming) {
        let Some(id) = request.str("requestId") else {
            return;
        };
        let opts = request.opts().unwrap_or_default();
        let sockets = self.local.fetch_sockets(&opts);
        #[derive(Serialize)]
        struct Body {
            sockets: Vec<iocluster_socketio::adapter::SocketInfo>,
        }
        self.respond_json(
            request,
            &PlainResponse {
                request_id: id,
                body: Body { sockets },
            },
        );
    }

    fn on_server_side_emit(&self, request: Incoming) {
        let Some(Value::Array(args)) = request.value.get("data").cloned() else {
            return;
        };
        let payload = Payload {
            args,
            attachments: request.attachments.clone(),
        };
        let reply: Option<ServerAck> = request.str("requestId").map(|id| {
            let id = id.to_owned();
            let publisher = self.publisher.clone();
            let channel = self.channels.response.clone();
            let reply: ServerAck = Box::new(move |reply: Payload| {
                // Node forwards the first argument of the reply only.
                let data = reply
                    .args
                    .first()
                    .map(|arg| wire::json_with_buffers(arg, &reply.attachments));
                let response = TypedResponse {
                    kind: RequestType::ServerSideEmit as u8,
                    request_id: &id,
                    data,
                    client_count: None,
                };
                if let Ok(json) = serde_json::to_string(&response) {
                    publisher.publish(channel, json);
                }
            });
            reply
        });
        self.local.server_side_event(payload, reply);
    }

    /// `BROADCAST`: deliver to our clients, tell how many, forward each
    /// reply.
    fn on_broadcast_with_ack(&self, request: Incoming) {
        let Some(id) = request.str("requestId").map(str::to_owned) else {
            return;
        };
        let Some(packet) = request.value.get("packet").cloned() else {
            return;
        };
        let packet = match wire::packet_of(packet, request.attachments.clone()) {
            Ok(packet) if packet.nsp == self.nsp => packet,
            _ => return,
        };
        let opts = request.opts().unwrap_or_default();
        let timeout = request_timeout(&opts.flags, self.config.requests_timeout);
        let mut acks = self.local.broadcast_with_ack(packet, &opts);
        self.respond_json(
            &request,
            &TypedResponse {
                kind: RequestType::BroadcastClientCount as u8,
                request_id: &id,
                data: None,
                client_count: Some(acks.expected),
            },
        );
        if acks.expected == 0 {
            return;
        }
        let channel = match request.str("uid") {
            Some(uid) if self.config.publish_on_specific_response_channel => {
                self.channels.specific_response(uid)
            }
            _ => self.channels.response.clone(),
        };
        let publisher = self.publisher.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, acks.next()).await {
                let message = wire::broadcast_ack(&id, reply.args.first(), &reply.attachments);
                publisher.publish(channel.clone(), message);
            }
        });
    }
}

impl super::link::Listener for AdapterCore {
    fn nsp(&self) -> &str {
        AdapterCore::nsp(self)
    }

    fn on_message(&self, channel: &str, bytes: &Bytes) {
        AdapterCore::on_message(self, channel, bytes)
    }
}
