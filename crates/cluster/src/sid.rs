//! Session ids that name their node and their worker: the first eleven
//! characters encode the node's number and the worker's instance number
//! (eight bytes of base64url), the other twenty are 120 random bits. A
//! master routes a request by decoding the prefix alone: to its own worker,
//! or to the node that owns the session, so a session's requests reach
//! their owner from the very first one, with no shared table. To anyone
//! else (clients, Node servers of a mixed fleet) the id is an opaque
//! string.

use base64::Engine as _;
use iocluster_engineio::{Sid, SidGenerator, random_base64url};

/// Characters of the node-and-instance prefix (eight bytes of base64url).
pub(crate) const PREFIX_LEN: usize = 11;
/// Characters of the random part (fifteen bytes: 120 bits).
const RANDOM_LEN: usize = 20;

/// The unique number of one spawned worker process. A restarted worker
/// gets a new one, so it never receives its predecessor's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The number of one node (one master and its workers) in a fleet: random
/// at each start unless set (`--node-id`, for a static peer list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionHome {
    pub(crate) node: NodeId,
    pub(crate) instance: InstanceId,
}

/// Makes the session ids of one worker.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSid {
    prefix: String,
}

impl ClusterSid {
    /// The generator of worker `instance` of node `node`.
    pub(crate) fn new(node: NodeId, instance: InstanceId) -> Self {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&node.0.to_be_bytes());
        bytes[4..].copy_from_slice(&instance.0.to_be_bytes());
        ClusterSid {
            prefix: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        }
    }
}

impl SidGenerator for ClusterSid {
    fn generate(&self) -> Sid {
        let mut sid = String::with_capacity(PREFIX_LEN + RANDOM_LEN);
        sid.push_str(&self.prefix);
        sid.push_str(&random_base64url::<15>());
        Sid::new(sid)
    }
}

/// Where the session a session id names lives, if the id is one of ours.
pub(crate) fn home_of(sid: &str) -> Option<SessionHome> {
    if sid.len() != PREFIX_LEN + RANDOM_LEN {
        return None;
    }
    let prefix = sid.get(..PREFIX_LEN)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(prefix)
        .ok()?;
    let bytes: [u8; 8] = bytes.try_into().ok()?;
    let [n0, n1, n2, n3, i0, i1, i2, i3] = bytes;
    Some(SessionHome {
        node: NodeId(u32::from_be_bytes([n0, n1, n2, n3])),
        instance: InstanceId(u32::from_be_bytes([i0, i1, i2, i3])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_names_its_node_and_worker_and_keeps_120_random_bits() {
        for (node, instance) in [(0u32, 0u32), (1, 7), (u32::MAX, 65_535), (42, u32::MAX)] {
            let sid = ClusterSid::new(NodeId(node), InstanceId(instance)).generate();
            assert_eq!(sid.as_str().len(), 31);
            assert_eq!(
                home_of(sid.as_str()),
                Some(SessionHome {
                    node: NodeId(node),
                    instance: InstanceId(instance)
                })
            );
            assert!(
                sid.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "base64url: {sid}"
            );
        }
        let generator = ClusterSid::new(NodeId(1), InstanceId(3));
        assert_ne!(generator.generate(), generator.generate());
    }

    #[test]
    fn foreign_or_malformed_sids_name_no_home() {
        assert_eq!(home_of(""), None);
        assert_eq!(
            home_of("abcdefghijklmnopqrst"),
            None,
            "a Node engine.io sid"
        );
        assert_eq!(home_of("!!!!!!!!!!!abcdefghijklmnopqrst"), None);
        assert_eq!(home_of("ééééééééééé"), None);
    }
}
