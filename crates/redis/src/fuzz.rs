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
    use std::path::Path;

    /// Runs `entry` on every file of the checked-in corpus of `target`;
    /// fails if the corpus is missing or empty.
    fn replay(target: &str, entry: fn(&[u8])) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut files = 0;
        for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = file.unwrap().path();
            // Shown with the panic, should one seed fail.
            eprintln!("replaying {}", path.display());
            entry(&std::fs::read(&path).unwrap());
            files += 1;
        }
        assert!(files > 0, "{} holds no seed", dir.display());
    }

    #[test]
    fn redis_msgpack_corpus_replays_without_panic() {
        replay("redis_msgpack", super::redis_msgpack);
    }

    #[test]
    fn redis_wire_corpus_replays_without_panic() {
        replay("redis_wire", super::redis_wire);
    }
}
