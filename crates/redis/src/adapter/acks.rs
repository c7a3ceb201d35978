//! Collecting the replies to a broadcast with acks: this server's clients'
//! directly, other servers' as `BROADCAST_CLIENT_COUNT` then one
//! `BROADCAST_ACK` per reply, until every server counted (`PUBSUB NUMSUB`)
//! and every counted client replied, or the timeout (as Node's
//! `BroadcastOperator.emitWithAck`).

use std::future::Future;
use std::time::Duration;

use iocluster_socketio::adapter::AckReplies;
use iocluster_socketio::{LocalAcks, Payload};

use super::pending::{Request, Response};

/// A response to a broadcast with acks, as either adapter's wire says it.
pub(super) enum AckResponse {
    /// A server tells how many of its clients were sent the packet.
    ClientCount(usize),
    /// One client's reply.
    Ack(Payload),
}

/// Whether every server counted its clients and every client replied.
fn done(servers: Option<usize>, counted: usize, replies: usize, expected: usize) -> bool {
    servers.is_some_and(|n| counted >= n) && replies >= expected
}

/// Waits for the replies of request `request`, the local ones from `local`;
/// `servers` counts the servers (this one included), `read` reads a
/// response.
pub(super) async fn collect(
    servers: impl Future<Output = Option<usize>>,
    mut request: Request,
    mut local: LocalAcks,
    timeout: Duration,
    read: fn(Response) -> Option<AckResponse>,
) -> AckReplies {
    let deadline = tokio::time::Instant::now() + timeout;
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
                let Some(response) = response else { break };
                match read(response) {
                    Some(AckResponse::ClientCount(count)) => {
                        counted_servers += 1;
                        expected += count;
                    }
                    Some(AckResponse::Ack(reply)) => replies.push(reply),
                    None => {}
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
