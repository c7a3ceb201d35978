//! The worker's end of the cluster adapter's message relay: publishes
//! envelopes through the master, answers other workers' requests, and hands
//! answers to the requests waiting for them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use iocluster_socketio::Payload;
use iocluster_socketio::adapter::LocalNamespace;
use iocluster_socketio::parser::{Encoded, Packet, PacketType};
use serde_json::Value;

use super::envelope::{self, Header};
use super::request::Requests;
pub(crate) use super::request::{Event, Pending};
use crate::control::{Frame, TO_ALL, WorkerMessage};
use crate::outbox::Outbox;

use super::capture::Captures;

/// The relay of one worker.
pub(crate) struct Relay {
    instance: u32,
    outbox: Outbox,
    namespaces: RwLock<HashMap<String, LocalNamespace>>,
    peers: RwLock<Vec<u32>>,
    pending: Requests,
    next_request: AtomicU64,
    next_offset: AtomicU64,
    captures: Arc<Captures>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Relay {
    pub(crate) fn new(instance: u32, outbox: Outbox) -> Arc<Relay> {
        Arc::new(Relay {
            instance,
            outbox,
            namespaces: RwLock::new(HashMap::new()),
            peers: RwLock::new(Vec::new()),
            pending: Requests::default(),
            next_request: AtomicU64::new(1),
            next_offset: AtomicU64::new(1),
            captures: Arc::new(Captures::default()),
        })
    }

    /// The recorded broadcasts captured for restores under way.
    pub(crate) fn captures(&self) -> &Arc<Captures> {
        &self.captures
    }

    /// Sends a control message to the master.
    pub(crate) fn control(&self, message: &WorkerMessage) {
        self.outbox.control(message);
    }

    /// Sends an envelope to every other worker (or `peer`).
    pub(crate) fn publish(&self, peer: u32, flags: u8, header: &Header, parts: &[Bytes]) {
        self.outbox.send(Frame::Relay {
            peer,
            flags,
            payload: envelope::encode(header, parts),
        });
    }

    /// A unique recovery offset.
    pub(crate) fn next_offset(&self) -> String {
        format!(
            "{}-{}",
            self.instance,
            self.next_offset.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The other workers alive now.
    pub(crate) fn peers(&self) -> Vec<u32> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Opens a request.
    pub(crate) fn register(&self) -> Pending {
        let request = self.next_request.fetch_add(1, Ordering::Relaxed);
        self.pending.open(request)
    }

    pub(crate) fn add_namespace(&self, namespace: LocalNamespace) {
        self.namespaces
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(namespace.name(), namespace);
    }

    fn namespace(&self, name: &str) -> Option<LocalNamespace> {
        self.namespaces
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// The other workers alive now, as the master announced them.
    pub(crate) fn set_peers(&self, others: Vec<u32>) {
        *self.peers.write().unwrap_or_else(|p| p.into_inner()) = others;
    }

    /// A worker died: every waiting request hears of it.
    pub(crate) fn gone(&self, instance: u32) {
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&i| i != instance);
        for sender in self.pending.lock().values() {
            let _ = sender.send(Event::Gone(instance));
        }
    }

    /// Handles a relay or recovery frame from the master.
    pub(crate) fn on_frame(self: &Arc<Self>, frame: Frame) {
        match frame {
            Frame::Relay { peer, payload, .. } => match envelope::decode(payload) {
                Ok((header, parts)) => self.on_envelope(peer, header, parts),
                Err(error) => {
                    tracing::warn!(source = peer, %error, "malformed relay envelope dropped")
                }
            },
            Frame::Restored {
                request,
                record,
                packets,
            } => {
                if let Some(sender) = self.pending.lock().get(&request) {
                    let _ = sender.send(Event::Restored { record, packets });
                }
            }
            Frame::Control(_) => {}
        }
    }

    fn on_envelope(self: &Arc<Self>, source: u32, header: Header, parts: Vec<Bytes>) {
        if let Some(request) = header.answers() {
            if let Some(sender) = self.pending.lock().get(&request) {
                let _ = sender.send(Event::Answer {
                    source,
                    header,
                    parts,
                });
            }
            return;
        }
        match header {
            Header::Broadcast { nsp, opts, offset } => {
                let Some(local) = self.namespace(&nsp) else {
                    return;
                };
                let mut parts = parts.into_iter();
                let Some(text) = parts
                    .next()
                    .and_then(iocluster_engineio::Text::from_packet_bytes)
                else {
                    tracing::warn!(source, "broadcast without a valid packet dropped");
                    return;
                };
                let encoded = Encoded {
                    text,
                    attachments: parts.collect(),
                };
                if offset.is_none() {
                    local.broadcast(&encoded, &opts);
                    return;
                }
                // Recorded: captured for the restores under way and
                // delivered with no restored socket admitted in between.
                let payload = || payload_of(encoded.text.clone(), encoded.attachments.clone());
                self.captures.deliver(&nsp, opts, payload, |opts| {
                    local.broadcast(&encoded, &opts);
                });
            }
            Header::BroadcastWithAck {
                nsp,
                opts,
                request,
                data,
            } => {
                let Some(local) = self.namespace(&nsp) else {
                    return self.publish(source, 0, &Header::Absent { request }, &[]);
                };
                let packet = Packet {
                    kind: PacketType::Event,
                    nsp,
                    id: None,
                    data: Some(data),
                    attachments: parts,
                };
                let mut acks = local.broadcast_with_ack(packet, &opts);
                self.publish(
                    source,
                    0,
                    &Header::BroadcastClientCount {
                        request,
                        count: acks.expected,
                    },
                    &[],
                );
                let relay = Arc::clone(self);
                let timeout = Duration::from_millis(opts.flags.timeout.unwrap_or(5_000));
                tokio::spawn(async move {
                    let deadline = tokio::time::Instant::now() + timeout;
                    let mut left = acks.expected;
                    while left > 0 {
                        match tokio::time::timeout_at(deadline, acks.next()).await {
                            Ok(Some(reply)) => {
                                left -= 1;
                                relay.publish(
                                    source,
                                    0,
                                    &Header::BroadcastAck {
                                        request,
                                        args: reply.args,
                                    },
                                    &reply.attachments,
                                );
                            }
                            _ => break,
                        }
                    }
                });
            }
            Header::SocketsJoin { nsp, opts, rooms } => {
                if let Some(local) = self.namespace(&nsp) {
                    local.add_sockets(&opts, &rooms);
                }
            }
            Header::SocketsLeave { nsp, opts, rooms } => {
                if let Some(local) = self.namespace(&nsp) {
                    local.del_sockets(&opts, &rooms);
                }
            }
            Header::DisconnectSockets { nsp, opts, close } => {
                if let Some(local) = self.namespace(&nsp) {
                    local.disconnect_sockets(&opts, close);
                }
            }
            Header::FetchSockets { nsp, opts, request } => {
                let sockets = self
                    .namespace(&nsp)
                    .map(|l| l.fetch_sockets(&opts))
                    .unwrap_or_default();
                self.publish(
                    source,
                    0,
                    &Header::FetchSocketsResponse { request, sockets },
                    &[],
                );
            }
            Header::ServerSideEmit { nsp, request, args } => {
                let Some(local) = self.namespace(&nsp) else {
                    if let Some(request) = request {
                        self.publish(source, 0, &Header::Absent { request }, &[]);
                    }
                    return;
                };
                let event = Payload {
                    args,
                    attachments: parts,
                };
                let reply = request.map(|request| {
                    let relay = Arc::clone(self);
                    Box::new(move |payload: Payload| {
                        relay.publish(
                            source,
                            0,
                            &Header::ServerSideEmitResponse {
                                request,
                                args: payload.args,
                            },
                            &payload.attachments,
                        );
                    }) as iocluster_socketio::ServerAck
                });
                local.server_side_event(event, reply);
            }
            Header::BroadcastClientCount { .. }
            | Header::BroadcastAck { .. }
            | Header::FetchSocketsResponse { .. }
            | Header::ServerSideEmitResponse { .. }
            | Header::Absent { .. } => {}
        }
    }
}

/// The arguments of a recovered broadcast, read back from its envelope.
pub(crate) fn missed_payload(envelope: Bytes) -> Option<Payload> {
    let (_, parts) = envelope::decode(envelope).ok()?;
    let mut parts = parts.into_iter();
    let text = iocluster_engineio::Text::from_packet_bytes(parts.next()?)?;
    payload_of(text, parts.collect())
}

/// The arguments of an encoded event packet and its attachments.
fn payload_of(text: iocluster_engineio::Text, parts: Vec<Bytes>) -> Option<Payload> {
    let mut decoder = iocluster_socketio::parser::Decoder::default();
    let mut packet = decoder.decode_text(text.as_str()).ok()?;
    for attachment in parts {
        packet = decoder.decode_binary(attachment).ok()?;
    }
    let packet = packet?;
    match packet.data? {
        Value::Array(args) => Some(Payload {
            args,
            attachments: packet.attachments,
        }),
        _ => None,
    }
}

/// Publishes to every other worker.
pub(crate) const EVERYONE: u32 = TO_ALL;
