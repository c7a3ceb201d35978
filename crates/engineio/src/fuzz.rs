//! Entry points for the fuzz targets (`fuzz/` at the top of the workspace)
//! over the decoders of what clients send: one function per target, called
//! by the target and by this module's corpus replay test, so both run the
//! same code.
//!
//! Compiled only for tests and under `--cfg fuzzing` (which `cargo fuzz`
//! passes): never part of the public API.

use axum::extract::ws::Utf8Bytes;

use crate::packet::Packet;
use crate::payload;

/// Target `engineio_packet`: a WebSocket text frame, decoded as the
/// WebSocket transport does (`decode_frame`) and as a polling record does
/// (`decode_text`).
///
/// Both must agree, and a decoded packet must read back the same from its
/// text form.
pub fn engineio_packet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        // A WebSocket text frame is UTF-8 by the time it reaches us.
        return;
    };
    let from_text = Packet::decode_text(text);
    let from_frame = Packet::decode_frame(Utf8Bytes::from(text));
    assert_eq!(from_text, from_frame, "the two decoders disagree");
    if let Ok(packet) = from_text {
        let mut out = String::new();
        packet.write_text(&mut out);
        assert_eq!(Packet::decode_text(&out), Ok(packet));
    }
}

/// Target `engineio_payload`: a polling request body.
///
/// A body that decodes must encode to a body that decodes to the same
/// packets.
pub fn engineio_payload(data: &[u8]) {
    let Ok(packets) = payload::decode(data) else {
        return;
    };
    let body = payload::encode(&packets);
    assert_eq!(payload::decode(body.as_bytes()), Ok(packets));
}

#[cfg(test)]
mod round_trip;

#[cfg(test)]
mod tests {
    use iocluster_testkit::replay_corpus;

    #[test]
    fn engineio_packet_corpus_replays_without_panic() {
        replay_corpus("engineio_packet", super::engineio_packet);
    }

    #[test]
    fn engineio_payload_corpus_replays_without_panic() {
        replay_corpus("engineio_payload", super::engineio_payload);
    }
}
