//! Session ids that name their worker: the first six characters encode the
//! worker's instance number, the other twenty are 120 random bits. The
//! master routes a request by decoding the prefix alone, so a session's
//! requests reach its owner from the very first one, with no shared table.

use base64::Engine as _;
use iocluster_engineio::{Sid, SidGenerator, random_base64url};

/// Characters of the instance prefix (four bytes of base64url).
pub(crate) const PREFIX_LEN: usize = 6;

/// The unique number of one spawned worker process. A restarted worker
/// gets a new one, so it never receives its predecessor's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Makes the session ids of one worker.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSid {
    prefix: String,
}

impl ClusterSid {
    /// The generator of worker `instance`.
    pub(crate) fn new(instance: InstanceId) -> Self {
        ClusterSid {
            prefix: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(instance.0.to_be_bytes()),
        }
    }
}

impl SidGenerator for ClusterSid {
    fn generate(&self) -> Sid {
        let mut sid = String::with_capacity(PREFIX_LEN + 20);
        sid.push_str(&self.prefix);
        sid.push_str(&random_base64url::<15>());
        Sid::new(sid)
    }
}

/// The worker instance a session id names, if it is one of ours.
pub(crate) fn instance_of(sid: &str) -> Option<InstanceId> {
    if sid.len() != PREFIX_LEN + 20 {
        return None;
    }
    let prefix = sid.get(..PREFIX_LEN)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(prefix)
        .ok()?;
    let bytes: [u8; 4] = bytes.try_into().ok()?;
    Some(InstanceId(u32::from_be_bytes(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_names_its_worker_and_keeps_120_random_bits() {
        for instance in [0u32, 1, 7, 65_535, u32::MAX] {
            let sid = ClusterSid::new(InstanceId(instance)).generate();
            assert_eq!(sid.as_str().len(), 26);
            assert_eq!(instance_of(sid.as_str()), Some(InstanceId(instance)));
        }
        let a = ClusterSid::new(InstanceId(3)).generate();
        let b = ClusterSid::new(InstanceId(3)).generate();
        assert_ne!(a, b);
    }

    #[test]
    fn foreign_or_malformed_sids_name_no_worker() {
        assert_eq!(instance_of(""), None);
        assert_eq!(instance_of("abcdefghijklmnopqrst"), None);
        assert_eq!(instance_of("!!!!!!abcdefghijklmnopqrst"), None);
        assert_eq!(instance_of("ééé"), None);
    }
}
