//! Collecting the replies to a broadcast with acks: this server's clients'
//! directly, other servers' as `BROADCAST_CLIENT_COUNT` then one
//! `BROADCAST_ACK` per reply, until every server counted (`PUBSUB NUMSUB`)
//! and every counted client replied, or the timeout (as Node's
//! `BroadcastOperator.emitWithAck`).

use std::sync::Arc;
use std::time::Duration;

use iocluster_socketio::adapter::AckReplies;
use iocluster_socketio::{LocalAcks, Payload};
use serde_json::Value;

use super::core::AdapterCore;
use super::pending::Request;
use crate::wire::RequestType;

/// Whether every server counted its clients and every client replied.
fn done(servers: Option<usize>, counted: usize, replies: usize, expected: usize) -> bool {
    servers.is_some_and(|n| counted >= n) && replies >= expected
}

/// Waits for the replies of request `request`, the local ones from `local`.
pub(super) async fn collect(
    core: Arc<AdapterCore>,
    mut request: Request,
    mut local: LocalAcks,
    timeout: Duration,
) -> AckReplies {
    let deadline = tokio::time::Instant::now() + timeout;
    let servers = core.publisher.numsub(&core.channels.request);
    tokio::pin!(servers);
    let mut expected_servers: Option<usize> = None;
    let mut counted_servers = 1;
    let mut expected = local.expected;
    let mut local_left = local.expected;
    let mut replies = Vec::new();
    while !done(expected_servers, counted_servers, replies.len(), expected) {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            count = &mut servers, if expected_servers.is_none() => {
                expected_servers = Some(count.unwrap_or(1));
            }
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
            response = request.responses.recv() => {
                let Some((value, attachments)) = response else { break };
                match value.get("type").and_then(RequestType::from_value) {
                    Some(RequestType::BroadcastClientCount) => {
                        counted_servers += 1;
                        expected += value
                            .get("clientCount")
                            .and_then(Value::as_u64)
                            .unwrap_or(0) as usize;
                    }
                    Some(RequestType::BroadcastAck) => {
                        let args = value.get("packet").cloned().into_iter().collect();
                        replies.push(Payload { args, attachments });
                    }
                    _ => {}
                }
            }
        }
    }
    AckReplies {
        complete: done(expected_servers, counted_servers, replies.len(), expected),
        expected,
        replies,
    }
}
