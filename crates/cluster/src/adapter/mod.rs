//! The cluster adapter: every worker as one Socket.IO server, with the
//! master relaying between workers (no Redis).
//!
//! A broadcast is encoded once by its sender; the master forwards the bytes
//! without decoding them; each receiving worker hands the same bytes to its
//! clients. Requests (fetch sockets, broadcast acks, server-side emits) wait
//! for the workers alive when they start; a worker that dies stops being
//! waited for at once. Connection state recovery lives in the master (see
//! docs/DESIGN.md): it outlives any worker.

mod capture;
pub(crate) mod envelope;
mod recovery;
pub(crate) mod relay;
mod request;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use iocluster_socketio::Payload;
use iocluster_socketio::adapter::{
    AckReplies, Adapter, AdapterError, AdapterFactory, BoxFuture, BroadcastOptions, LocalNamespace,
    PersistedSession, RecoveryStore, RestoredSession, SocketInfo,
};
use iocluster_socketio::parser::{Encoded, Packet, encode};
use serde_json::Value;

use crate::control::{FLAG_RECORD, TO_MASTER, WorkerMessage};
use envelope::Header;
use relay::{EVERYONE, Event, Relay};

/// How long requests to other workers wait by default.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes [`ClusterAdapter`]s for the namespaces of one worker.
#[derive(Debug, Clone)]
pub(crate) struct ClusterAdapterFactory {
    relay: Arc<Relay>,
}

impl ClusterAdapterFactory {
    pub(crate) fn new(relay: Arc<Relay>) -> Self {
        ClusterAdapterFactory { relay }
    }
}

impl AdapterFactory for ClusterAdapterFactory {
    fn create(&self, namespace: LocalNamespace) -> Arc<dyn Adapter> {
        self.relay.add_namespace(namespace.clone());
        Arc::new(ClusterAdapter {
            nsp: namespace.name(),
            relay: Arc::clone(&self.relay),
            local: namespace,
        })
    }
}

/// One namespace's adapter on one worker.
#[derive(Debug)]
pub(crate) struct ClusterAdapter {
    nsp: String,
    relay: Arc<Relay>,
    local: LocalNamespace,
}

impl ClusterAdapter {
    fn publish(&self, header: &Header, parts: &[Bytes]) {
        self.relay.publish(EVERYONE, 0, header, parts);
    }

    /// Delivers a broadcast to this worker's sockets and sends it to the
    /// other workers (to the master only, when local and recorded).
    fn deliver_and_publish(
        &self,
        encoded: &Encoded,
        opts: BroadcastOptions,
        offset: Option<String>,
    ) {
        self.local.broadcast(encoded, &opts);
        if opts.flags.local && offset.is_none() {
            return;
        }
        let mut parts = Vec::with_capacity(1 + encoded.attachments.len());
        parts.push(encoded.text.packet_bytes());
        parts.extend(encoded.attachments.iter().cloned());
        let target = if opts.flags.local {
            TO_MASTER
        } else {
            EVERYONE
        };
        let flags = if offset.is_some() { FLAG_RECORD } else { 0 };
        let header = Header::Broadcast {
            nsp: self.nsp.clone(),
            opts,
            offset,
        };
        self.relay.publish(target, flags, &header, &parts);
    }
}

impl Adapter for ClusterAdapter {
    fn broadcast(&self, mut packet: Packet, opts: BroadcastOptions) {
        let offset = (self.local.recovery().is_some()
            && RecoveryStore::is_recorded(&packet, &opts))
        .then(|| {
            let offset = self.relay.next_offset();
            if let Some(Value::Array(args)) = &mut packet.data {
                args.push(Value::String(offset.clone()));
            }
            offset
        });
        let encoded = encode(&packet);
        if offset.is_none() {
            return self.deliver_and_publish(&encoded, opts, None);
        }
        // Recorded: captured for the restores under way, delivered here and
        // published with no restored socket admitted in between (see
        // `capture`).
        let payload = || match &packet.data {
            Some(Value::Array(args)) => Some(Payload {
                args: args.clone(),
                attachments: packet.attachments.clone(),
            }),
            _ => None,
        };
        self.relay
            .captures()
            .deliver(&self.nsp, opts, payload, |opts| {
                self.deliver_and_publish(&encoded, opts, offset)
            });
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'static, AckReplies> {
        let mut local = self.local.broadcast_with_ack(packet.clone(), &opts);
        if opts.flags.local {
            return Box::pin(local.collect(timeout));
        }
        let mut pending = self.relay.register();
        let mut awaiting: HashSet<u32> = self.relay.peers().into_iter().collect();
        self.publish(
            &Header::BroadcastWithAck {
                nsp: self.nsp.clone(),
                opts,
                request: pending.request,
                data: packet.data.unwrap_or(Value::Array(Vec::new())),
            },
            &packet.attachments,
        );
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut replies = Vec::new();
            let mut expected = local.expected;
            let mut local_left = local.expected;
            // Per worker: clients counted, replies received.
            let mut remote: HashMap<u32, (usize, usize)> = HashMap::new();
            loop {
                if awaiting.is_empty() && replies.len() >= expected {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    reply = local.next(), if local_left > 0 => match reply {
                        Some(reply) => {
                            local_left -= 1;
                            replies.push(reply);
                        }
                        None => {
                            expected -= local_left;
                            local_left = 0;
                        }
                    },
                    event = pending.events.recv() => match event {
                        Some(Event::Answer { source, header: Header::BroadcastClientCount { count, .. }, .. }) => {
                            if awaiting.remove(&source) {
                                expected += count;
                                remote.entry(source).or_default().0 = count;
                            }
                        }
                        Some(Event::Answer { source, header: Header::BroadcastAck { args, .. }, parts }) => {
                            remote.entry(source).or_default().1 += 1;
                            replies.push(Payload { args, attachments: parts });
                        }
                        Some(Event::Answer { source, header: Header::Absent { .. }, .. }) => {
                            awaiting.remove(&source);
                        }
                        Some(Event::Gone(source)) => {
                            awaiting.remove(&source);
                            if let Some((count, received)) = remote.remove(&source) {
                                expected -= count.saturating_sub(received);
                            }
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            AckReplies {
                complete: awaiting.is_empty() && replies.len() >= expected,
                expected,
                replies,
            }
        })
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'static, Result<Vec<SocketInfo>, AdapterError>> {
        let mut sockets = self.local.fetch_sockets(&opts);
        if opts.flags.local {
            return Box::pin(async move { Ok(sockets) });
        }
        let mut pending = self.relay.register();
        let awaiting: HashSet<u32> = self.relay.peers().into_iter().collect();
        let timeout = opts
            .flags
            .timeout
            .map(Duration::from_millis)
            .unwrap_or(REQUEST_TIMEOUT);
        self.publish(
            &Header::FetchSockets {
                nsp: self.nsp.clone(),
                opts,
                request: pending.request,
            },
            &[],
        );
        Box::pin(async move {
            pending
                .collect(awaiting, timeout, |header, _| match header {
                    Header::FetchSocketsResponse {
                        sockets: theirs, ..
                    } => {
                        sockets.extend(theirs);
                        true
                    }
                    _ => false,
                })
                .await?;
            Ok(sockets)
        })
    }

    fn add_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.local.add_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.publish(
                &Header::SocketsJoin {
                    nsp: self.nsp.clone(),
                    opts,
                    rooms,
                },
                &[],
            );
        }
    }

    fn del_sockets(&self, opts: BroadcastOptions, rooms: Vec<String>) {
        self.local.del_sockets(&opts, &rooms);
        if !opts.flags.local {
            self.publish(
                &Header::SocketsLeave {
                    nsp: self.nsp.clone(),
                    opts,
                    rooms,
                },
                &[],
            );
        }
    }

    fn disconnect_sockets(&self, opts: BroadcastOptions, close: bool) {
        if !opts.flags.local {
            self.publish(
                &Header::DisconnectSockets {
                    nsp: self.nsp.clone(),
                    opts: opts.clone(),
                    close,
                },
                &[],
            );
        }
        self.local.disconnect_sockets(&opts, close);
    }

    fn server_side_emit(
        &self,
        event: Payload,
        ack: Option<Duration>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, AdapterError>> {
        let Some(timeout) = ack else {
            self.publish(
                &Header::ServerSideEmit {
                    nsp: self.nsp.clone(),
                    request: None,
                    args: event.args,
                },
                &event.attachments,
            );
            return Box::pin(async { Ok(Vec::new()) });
        };
        let mut pending = self.relay.register();
        let awaiting: HashSet<u32> = self.relay.peers().into_iter().collect();
        self.publish(
            &Header::ServerSideEmit {
                nsp: self.nsp.clone(),
                request: Some(pending.request),
                args: event.args,
            },
            &event.attachments,
        );
        Box::pin(async move {
            let mut replies = Vec::new();
            pending
                .collect(awaiting, timeout, |header, parts| match header {
                    Header::ServerSideEmitResponse { args, .. } => {
                        replies.push(Payload {
                            args,
                            attachments: parts,
                        });
                        true
                    }
                    _ => false,
                })
                .await?;
            Ok(replies)
        })
    }

    fn server_count(&self) -> BoxFuture<'static, usize> {
        let count = self.relay.peers().len() + 1;
        Box::pin(async move { count })
    }

    fn track_session(&self, session: &PersistedSession) {
        self.send_session(session, |nsp, record| WorkerMessage::TrackSession {
            nsp,
            record,
        });
    }

    fn persist_session(&self, session: PersistedSession) {
        self.send_session(&session, |nsp, record| WorkerMessage::PersistSession {
            nsp,
            record,
        });
    }

    fn forget_session(&self, pid: &str) {
        self.relay.control(&WorkerMessage::ForgetSession {
            pid: pid.to_owned(),
        });
    }

    fn restore_session(
        &self,
        pid: String,
        offset: String,
    ) -> BoxFuture<'static, Option<RestoredSession>> {
        self.restore(pid, offset)
    }
}
