//! Entry points for the fuzz targets (`fuzz/` at the top of the workspace)
//! over what the master reads from clients and what the master and the
//! workers read from each other: one function per target, called by the
//! target and by this module's corpus replay test, so both run the same
//! code.
//!
//! Compiled only for tests and under `--cfg fuzzing` (which `cargo fuzz`
//! passes): never part of the public API.

use bytes::Bytes;

use crate::adapter::envelope;
use crate::control::{Frame, MasterMessage, WorkerMessage};
use crate::head;

/// Target `head`: the first bytes of a connection, as the master's head
/// reader sees them (a head, maybe followed by a body).
pub fn head(data: &[u8]) {
    let _ = head::parse(data);
}

/// Target `cluster_envelope`: a relay payload, read whole as a worker does
/// and header only as the master does for recovery records.
///
/// Both readers must agree on the header, and an envelope that reads must
/// read back from its encoding with the same parts.
pub fn cluster_envelope(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let header = envelope::decode_header(&bytes);
    let Ok((whole, parts)) = envelope::decode(bytes) else {
        return;
    };
    assert_eq!(header.as_ref(), Ok(&whole), "the two readers disagree");
    let (_, reread) = envelope::decode(envelope::encode(&whole, &parts))
        .unwrap_or_else(|e| panic!("{whole:?} encodes to an envelope refused: {e}"));
    assert_eq!(reread, parts);
}

/// Target `cluster_frame`: a control channel frame, as the master reads it
/// from a worker and as a worker reads it from the master, and the JSON
/// message of a control frame.
///
/// A frame that reads must read back the same from its encoding.
pub fn cluster_frame(data: &[u8]) {
    for from_worker in [true, false] {
        let Some(frame) = Frame::decode(Bytes::copy_from_slice(data), from_worker) else {
            continue;
        };
        if let Frame::Control(json) = &frame {
            if from_worker {
                let _ = serde_json::from_slice::<WorkerMessage>(json);
            } else {
                let _ = serde_json::from_slice::<MasterMessage>(json);
            }
        }
        let encoded = frame.clone().encode(from_worker);
        assert_eq!(Frame::decode(encoded, from_worker), Some(frame));
    }
}

#[cfg(test)]
mod round_trip;
#[cfg(test)]
mod seeds;

#[cfg(test)]
mod tests {
    use iocluster_testkit::replay_corpus;

    #[test]
    fn head_corpus_replays_without_panic() {
        replay_corpus("head", super::head);
    }

    #[test]
    fn cluster_envelope_corpus_replays_without_panic() {
        replay_corpus("cluster_envelope", super::cluster_envelope);
    }

    #[test]
    fn cluster_frame_corpus_replays_without_panic() {
        replay_corpus("cluster_frame", super::cluster_frame);
    }
}
