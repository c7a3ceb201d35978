//! Packets from the client: events to their handlers (with an ack sender
//! when the client asked for one), acks to the requests waiting for them.

use std::sync::Arc;

use serde_json::Value;

use super::Socket;
use crate::ack::AckSender;
use crate::parser::{Packet, PacketType};
use crate::payload::Payload;
use crate::reason::DisconnectReason;

impl Socket {
    pub(super) fn dispatch(self: &Arc<Self>, packet: Packet) {
        match packet.kind {
            PacketType::Event | PacketType::BinaryEvent => self.on_event(packet),
            PacketType::Ack | PacketType::BinaryAck => self.on_ack(packet),
            PacketType::Disconnect => self.on_close(DisconnectReason::ClientNamespaceDisconnect),
            PacketType::Connect | PacketType::ConnectError => {}
        }
    }

    /// Handles an EVENT from the client.
    fn on_event(self: &Arc<Self>, packet: Packet) {
        let Some(serde_json::Value::Array(mut args)) = packet.data else {
            return;
        };
        if args.is_empty() {
            return;
        }
        let name = match args.remove(0) {
            Value::String(name) => name,
            other => other.to_string(),
        };
        let payload = Payload {
            args,
            attachments: packet.attachments,
        };
        for handler in self.incoming_listeners() {
            handler(self, &name, &payload);
        }
        let handler = self
            .events
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(event, _)| **event == *name)
            .map(|(_, handler)| Arc::clone(handler));
        if let Some(handler) = handler {
            let ack = packet.id.map(|id| AckSender::new(Arc::clone(self), id));
            handler(self, payload, ack);
        }
    }

    /// Handles an ACK from the client.
    fn on_ack(&self, packet: Packet) {
        let Some(id) = packet.id else { return };
        let args = match packet.data {
            Some(Value::Array(args)) => args,
            _ => Vec::new(),
        };
        if !self.acks.resolve(
            id,
            Payload {
                args,
                attachments: packet.attachments,
            },
        ) {
            tracing::debug!(socket = %self.id, id, "ack for an unknown id ignored");
        }
    }
}
