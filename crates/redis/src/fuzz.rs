//! Entry points for the fuzz targets (`fuzz/` at the top of the workspace)
//! over what other servers and emitters publish on Redis: one function per
//! target, called by the target and by this module's corpus replay test, so
//! both run the same code.
//!
//! Compiled only for tests and under `--cfg fuzzing` (which `cargo fuzz`
//! passes): never part of the public API.

use bytes::Bytes;

use crate::adapter::sharded::wire as sharded_wire;
use crate::{msgpack, wire};

/// Target `redis_msgpack`: one msgpack value as notepack.io writes it.
///
/// A value that reads must encode to bytes that read again (not always to
/// the same value: an object that looks like a placeholder is written as
/// its binary).
pub fn redis_msgpack(data: &[u8]) {
    let Ok((value, attachments)) = msgpack::decode(data) else {
        return;
    };
    let encoded = msgpack::encode(&value, &attachments);
    if let Err(e) = msgpack::decode(&encoded) {
        panic!("{value:?} encodes to msgpack refused: {e}");
    }
}

/// Target `redis_wire`: a message received on a Redis channel, read as a
/// broadcast and as a request or response of the classic adapter, and as a
/// message of the sharded adapter.
pub fn redis_wire(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let _ = wire::decode_broadcast(&bytes);
    let _ = wire::decode_message(&bytes);
    let _ = sharded_wire::decode(&bytes);
}

#[cfg(test)]
mod round_trip;
#[cfg(test)]
mod seeds;

#[cfg(test)]
mod tests {
    use iocluster_testkit::replay_corpus;

    #[test]
    fn redis_msgpack_corpus_replays_without_panic() {
        replay_corpus("redis_msgpack", super::redis_msgpack);
    }

    #[test]
    fn redis_wire_corpus_replays_without_panic() {
        replay_corpus("redis_wire", super::redis_wire);
    }
}
