//! What a namespace does with the messages of other servers (Node's
//! `ClusterAdapter.onMessage` and `onResponse`), whichever way they came.

use std::fmt::Display;

use iocluster_socketio::adapter::SocketInfo;
use iocluster_socketio::{Payload, ServerAck};
use serde_json::Value;

use super::wire::{Incoming, Item, MessageType, reply_data, rooms, wire_opts};
use super::{ClusterCore, Transport};
use crate::adapter::pending::request_timeout;

impl<T: Transport> ClusterCore<T> {
    /// A message of another server for this namespace. `offset`: where a
    /// broadcast that recovery records stands in the stream (the streams
    /// adapter with recovery on), given to the clients with it.
    /// Heartbeats are the transport's business, not handled here.
    pub(crate) fn on_message(&self, message: Incoming, offset: Option<&dyn Display>) {
        let opts = || wire_opts(&message.data);
        match message.kind {
            MessageType::Broadcast => self.on_broadcast(message, offset),
            MessageType::SocketsJoin => self.local.add_sockets(&opts(), &rooms(&message.data)),
            MessageType::SocketsLeave => self.local.del_sockets(&opts(), &rooms(&message.data)),
            MessageType::DisconnectSockets => {
                let close = message.data.get("close").and_then(Value::as_bool);
                self.local
                    .disconnect_sockets(&opts(), close.unwrap_or(false));
            }
            MessageType::FetchSockets => self.answer_fetch(&message),
            MessageType::ServerSideEmit => self.on_server_side_emit(message),
            kind if kind.is_response() => self.on_response(message),
            // Heartbeats and closes: the transport's (the sharded adapter
            // counts servers with `PUBSUB SHARDNUMSUB` and ignores them).
            _ => {}
        }
    }

    /// A response: to a request of ours, or (every server reads every
    /// entry of a stream) to somebody else's.
    fn on_response(&self, message: Incoming) {
        let Some(id) = message.str("requestId").map(str::to_owned) else {
            return;
        };
        if !self.pending.contains(&id) {
            return;
        }
        let Incoming {
            kind,
            uid,
            data,
            attachments,
            ..
        } = message;
        let mut value = data;
        if let Value::Object(map) = &mut value {
            map.insert("type".to_owned(), Value::from(kind as u8));
            map.insert("uid".to_owned(), Value::String(uid));
        }
        self.pending.deliver(&id, (value, attachments));
    }

    fn on_broadcast(&self, message: Incoming, offset: Option<&dyn Display>) {
        let Some(mut packet) = message.data.get("packet").cloned() else {
            return self.count_malformed("broadcast without packet");
        };
        // socket.io 4.8 publishes packets without `nsp`: the message's.
        if let Value::Object(map) = &mut packet {
            map.entry("nsp")
                .or_insert_with(|| Value::String(message.nsp.clone()));
        }
        let mut packet = match crate::wire::packet_of(packet, message.attachments.clone()) {
            Ok(packet) if packet.nsp == self.nsp => packet,
            _ => return self.count_malformed("broadcast packet is not an event"),
        };
        let opts = wire_opts(&message.data);
        let Some(id) = message.str("requestId").map(str::to_owned) else {
            // Recovery records events without ack, not volatile (Node's
            // `addOffsetIfNecessary`).
            if let Some(offset) = offset
                && !opts.flags.volatile
                && let Some(Value::Array(args)) = &mut packet.data
            {
                args.push(Value::String(offset.to_string()));
            }
            self.local.broadcast_packet(&packet, &opts);
            return;
        };
        let timeout = request_timeout(&opts.flags, self.requests_timeout);
        let mut acks = self.local.broadcast_with_ack(packet, &opts);
        let respond = T::responder(self, &message.uid);
        let count = Item::Map(vec![
            ("requestId", Item::Str(&id)),
            ("clientCount", Item::UInt(acks.expected as u64)),
        ]);
        respond(MessageType::BroadcastClientCount, count, &[]);
        if acks.expected == 0 {
            return;
        }
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, acks.next()).await {
                // Node's adapter forwards the first argument of a reply.
                let data = reply_data(&id, reply.args.first());
                respond(MessageType::BroadcastAck, data, &reply.attachments);
            }
        });
    }

    fn answer_fetch(&self, message: &Incoming) {
        let Some(id) = message.str("requestId") else {
            return;
        };
        let sockets: Vec<SocketInfo> = self.local.fetch_sockets(&wire_opts(&message.data));
        let sockets = match serde_json::to_value(sockets) {
            Ok(sockets) => sockets,
            Err(error) => {
                tracing::warn!(%error, "sockets not serializable");
                return;
            }
        };
        let data = Item::Map(vec![
            ("requestId", Item::Str(id)),
            ("sockets", Item::Json(&sockets)),
        ]);
        T::responder(self, &message.uid)(MessageType::FetchSocketsResponse, data, &[]);
    }

    fn on_server_side_emit(&self, message: Incoming) {
        let Some(Value::Array(args)) = message.data.get("packet").cloned() else {
            return self.count_malformed("server-side emit without packet");
        };
        let payload = Payload {
            args,
            attachments: message.attachments.clone(),
        };
        let reply: Option<ServerAck> = message.str("requestId").map(|id| {
            let id = id.to_owned();
            let respond = T::responder(self, &message.uid);
            let reply: ServerAck = Box::new(move |reply: Payload| {
                // Node forwards the first argument of the reply only.
                let data = reply_data(&id, reply.args.first());
                respond(
                    MessageType::ServerSideEmitResponse,
                    data,
                    &reply.attachments,
                );
            });
            reply
        });
        self.local.server_side_event(payload, reply);
    }
}
